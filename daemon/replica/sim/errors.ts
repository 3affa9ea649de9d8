// OpenAI-shaped error responses: {"error":{"message","type","code","param"}}.
// Clients (the official SDK included) read `type`, `code` and `param` from
// here, and the daemon's router tells "retry elsewhere" (503 + Retry-After)
// from "the request is wrong" (4xx) by status alone.

import type { ServerResponse } from 'node:http'

export type ErrorType = 'invalid_request_error' | 'server_error'

export interface ApiError {
  status: number
  message: string
  type: ErrorType
  code: string | null
  param: string | null
  retryAfterSeconds?: number
}

export function apiError(
  status: number,
  message: string,
  code: string | null,
  param: string | null = null,
  type: ErrorType = status >= 500 ? 'server_error' : 'invalid_request_error',
): ApiError {
  return { status, message, type, code, param }
}

export function unavailable(message: string, code: string, retryAfterSeconds = 1): ApiError {
  return { status: 503, message, type: 'server_error', code, param: null, retryAfterSeconds }
}

export function sendJson(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...extra,
  })
  res.end(body)
}

export function sendError(res: ServerResponse, err: ApiError, extra?: Record<string, string>): void {
  const body = JSON.stringify({ error: { message: err.message, type: err.type, code: err.code, param: err.param } })
  const headers: Record<string, string> = { ...extra }
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.retryAfterSeconds)
  sendJson(res, err.status, body, headers)
}
