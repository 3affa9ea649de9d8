/**
 * Which methods each path of the listener answers: the one table behind the
 * `Allow` header of a 405 and of an OPTIONS answer. HEAD is answered wherever
 * GET is (Node's http server sends the head and drops the body).
 */
import type { ServerResponse } from 'node:http'
import type { OpenAIError } from './errors.ts'

const READ = ['GET', 'HEAD', 'OPTIONS'] as const
const INFER = ['POST', 'OPTIONS'] as const

/** The model routes' prefix: `/v1/models/{id}`, the id URL-encoded or not. */
export const MODEL_PREFIX = '/v1/models/'

/** The methods `path` answers, or null when it is no route. */
export function allowedMethods (path: string): readonly string[] | null {
  switch (path) {
    case '/health':
    case '/metrics':
    case '/v1/models':
      return READ
    case '/v1/chat/completions':
    case '/v1/completions':
    case '/v1/embeddings':
      return INFER
  }
  return path.startsWith(MODEL_PREFIX) ? READ : null
}

/** Whether `method` is one of `allowed`. */
export function allows (allowed: readonly string[], method: string | undefined): boolean {
  return allowed.includes(method ?? 'GET')
}

/** OPTIONS: 204 with `Allow`, no body, no key needed (CORS preflights carry none). */
export function sendOptions (res: ServerResponse, allowed: readonly string[], headers: Record<string, string> = {}): void {
  res.writeHead(204, { allow: allowed.join(', '), ...headers })
  res.end()
}

/** The 405 for `method` on `path`; send it with `{ allow: allowed.join(', ') }`. */
export function methodNotAllowed (allowed: readonly string[], method: string | undefined, path: string): OpenAIError {
  return { status: 405, type: 'invalid_request_error', code: 'method_not_allowed', message: `${method ?? '?'} is not allowed on ${path}; allowed: ${allowed.join(', ')}` }
}
