/**
 * One access-log line per HTTP request, written once when its response is
 * over: answered, failed, or cut off by the client (a `close` before the
 * response finished). Whatever handles the request fills in an `Access`
 * record as it learns things (the model, who served it, the first byte, the
 * replica's token counts); nothing is logged along the way, so a request is
 * never logged twice nor forgotten.
 *
 * A line (pino, JSON; `node` is the entry node's name on every line):
 *   {"msg":"request","request_id","method","path","status","duration_ms",
 *    "entry","entry_peer","model","stream","served_by","served_by_peer",
 *    "ttft_ms","prompt_tokens","completion_tokens","total_tokens","error","aborted"}
 * Fields that do not apply are left out. `status` 499 (nginx's "client closed
 * request") when the client left before any response head was sent. Probes of
 * /health and scrapes of /metrics are logged at debug level, all else at info.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BodyTail } from './usage.ts'

export interface Access {
  readonly id: string
  readonly method: string
  readonly path: string
  /** performance.now() when the request arrived. */
  readonly started: number
  model?: string
  stream?: boolean
  /** Peer id of the member whose replica answered. */
  servedBy?: string
  /** performance.now() when the first byte of the answer's body went to the client. */
  firstByte?: number
  /** The answer's last chunks, where the replica's `usage` is looked for when the line is written. */
  tail?: BodyTail
  /** The OpenAI error code answered, or why a started answer broke off. */
  error?: string
}

export interface AccessLogInit {
  selfId: string
  selfName: string
}

export interface AccessLogComponents {
  log: { info: (o: object, msg: string) => void, debug: (o: object, msg: string) => void, isLevelEnabled: (level: string) => boolean }
  /** A member's node name by peer id, when it is known. */
  memberName: (peerId: string) => string | undefined
}

/** Status logged for a request whose client left before a response head was sent. */
export const CLIENT_CLOSED = 499

const QUIET_PATHS = new Set(['/health', '/metrics'])

export class AccessLog {
  private readonly init: AccessLogInit
  private readonly c: AccessLogComponents

  constructor (init: AccessLogInit, components: AccessLogComponents) {
    this.init = init
    this.c = components
  }

  /** Starts a request's record; its line is written when `res` closes. */
  begin (req: IncomingMessage, res: ServerResponse, id: string, path: string): Access {
    const a: Access = { id, method: req.method ?? 'GET', path, started: performance.now() }
    res.once('close', () => { this.write(a, res) })
    return a
  }

  private write (a: Access, res: ServerResponse): void {
    const level = QUIET_PATHS.has(a.path) ? 'debug' : 'info'
    // Nothing is built for a level that is off (the benchmarks run at warn).
    if (!this.c.log.isLevelEnabled(level)) return
    const line = accessLine(a, { status: res.headersSent ? res.statusCode : CLIENT_CLOSED, finished: res.writableFinished, now: performance.now() }, this.init, this.c.memberName)
    if (level === 'debug') this.c.log.debug(line, 'request')
    else this.c.log.info(line, 'request')
  }
}

/** The line's fields (pure: what `write` logs). */
export function accessLine (a: Access, end: { status: number, finished: boolean, now: number }, self: AccessLogInit, memberName: (peerId: string) => string | undefined): Record<string, unknown> {
  const line: Record<string, unknown> = {
    request_id: a.id,
    method: a.method,
    path: a.path,
    status: end.status,
    duration_ms: ms(end.now - a.started),
    entry: self.selfName,
    entry_peer: self.selfId
  }
  if (a.model !== undefined) line.model = a.model
  if (a.stream !== undefined) line.stream = a.stream
  if (a.servedBy !== undefined) {
    line.served_by = a.servedBy === self.selfId ? self.selfName : (memberName(a.servedBy) ?? null)
    line.served_by_peer = a.servedBy
  }
  if (a.firstByte !== undefined) line.ttft_ms = ms(a.firstByte - a.started)
  const usage = a.tail?.usage()
  if (usage != null) {
    if (usage.prompt_tokens !== undefined) line.prompt_tokens = usage.prompt_tokens
    if (usage.completion_tokens !== undefined) line.completion_tokens = usage.completion_tokens
    if (usage.total_tokens !== undefined) line.total_tokens = usage.total_tokens
  }
  if (a.error !== undefined) line.error = a.error
  if (!end.finished) line.aborted = true
  return line
}

function ms (v: number): number {
  return Math.round(v * 10) / 10
}
