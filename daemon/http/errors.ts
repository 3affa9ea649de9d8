/**
 * Errors in the OpenAI wire format: {"error": {"message", "type", "code", "param"}},
 * so clients built for OpenAI surface them properly.
 */
import type { ServerResponse } from 'node:http'

export type OpenAIErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'service_unavailable'

export interface OpenAIError {
  status: number
  type: OpenAIErrorType
  code: string
  message: string
  param?: string | null
  retryAfterSeconds?: number
}

export function sendError (res: ServerResponse, err: OpenAIError, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = JSON.stringify({ error: { message: err.message, type: err.type, code: err.code, param: err.param ?? null } })
  const h: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers }
  if (err.retryAfterSeconds !== undefined) h['retry-after'] = Math.max(1, Math.ceil(err.retryAfterSeconds))
  res.writeHead(err.status, h)
  res.end(body)
}

export function sendJson (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers })
  res.end(body)
}
