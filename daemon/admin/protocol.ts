/**
 * The admin socket protocol between the CLI and its local daemon, version 1.
 * A unix socket, newline-delimited JSON: the client sends one request line;
 * the daemon answers with zero or more `event` lines (progress of a long
 * operation, e.g. `burst --wait`) and exactly one final `result` or `error`
 * line, then closes.
 *
 * Kept free of heavy imports: the CLI loads this on every call.
 */
export const ADMIN_PROTOCOL_VERSION = 1
/** Requests and answers are small; anything larger is a bug or an attack. */
export const ADMIN_MAX_LINE_BYTES = 4 * 1024 * 1024

export type AdminMethod = 'status' | 'info' | 'join' | 'leave' | 'version' | 'burst' | 'terminate' | 'voters' | 'ping'

export interface AdminRequest {
  v: typeof ADMIN_PROTOCOL_VERSION
  method: AdminMethod
  params?: Record<string, unknown>
}

export type AdminResponse =
  | { v: typeof ADMIN_PROTOCOL_VERSION, type: 'event', event: Record<string, unknown> }
  | { v: typeof ADMIN_PROTOCOL_VERSION, type: 'result', result: unknown }
  | { v: typeof ADMIN_PROTOCOL_VERSION, type: 'error', error: { code: AdminErrorCode, message: string } }

/**
 * `usage` maps to exit status 2 in the CLI, everything else to 1, except
 * `outcome_unknown`: the request may or may not have been carried out (the
 * leader took it and no answer came back); `meshd burst` exits 3 on it.
 */
export type AdminErrorCode = 'usage' | 'failed' | 'unavailable' | 'unknown_method' | 'bad_request' | 'outcome_unknown'

export const METHODS: ReadonlySet<string> = new Set<AdminMethod>(['status', 'info', 'join', 'leave', 'version', 'burst', 'terminate', 'voters', 'ping'])

/** Validates a request line from the socket; returns an error message or the request. */
export function parseRequest (line: string): AdminRequest | string {
  let raw: unknown
  try {
    raw = JSON.parse(line)
  } catch {
    return 'request is not JSON'
  }
  if (raw === null || typeof raw !== 'object') return 'request is not an object'
  const r = raw as Record<string, unknown>
  if (r.v !== ADMIN_PROTOCOL_VERSION) return `unsupported admin protocol version ${JSON.stringify(r.v)} (this daemon speaks ${ADMIN_PROTOCOL_VERSION})`
  if (typeof r.method !== 'string' || !METHODS.has(r.method)) return `unknown method ${JSON.stringify(r.method)}`
  if (r.params !== undefined && (r.params === null || typeof r.params !== 'object' || Array.isArray(r.params))) return 'params must be an object'
  return r as unknown as AdminRequest
}
