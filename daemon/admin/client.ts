/**
 * The CLI side of the admin socket. Only node:net: `meshd status` must start
 * and answer in well under a second.
 */
import { createConnection } from 'node:net'
import { ADMIN_PROTOCOL_VERSION, ADMIN_MAX_LINE_BYTES, type AdminMethod, type AdminResponse } from './protocol.ts'

export class AdminError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'AdminError'
    this.code = code
  }
}

export interface CallOptions {
  timeoutMs?: number
  onEvent?: (event: Record<string, unknown>) => void
}

export function callDaemon (socketPath: string, method: AdminMethod, params: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath)
    let buf = ''
    let settled = false
    const finish = (err: Error | null, value?: unknown): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      if (err !== null) reject(err)
      else resolve(value)
    }
    const timeoutMs = opts.timeoutMs ?? 30_000
    const timer = setTimeout(() => { finish(new AdminError('timeout', `the daemon at ${socketPath} did not answer within ${timeoutMs} ms`)) }, timeoutMs)
    sock.setEncoding('utf8')
    let sent = false
    sock.on('connect', () => { sock.write(JSON.stringify({ v: ADMIN_PROTOCOL_VERSION, method, params }) + '\n'); sent = true })
    sock.on('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
        ? 'is the daemon running? (`meshd start`, or `systemctl status meshd`)'
        : err.code === 'EACCES' ? 'permission denied: run as the meshd user or a member of its group' : err.message
      finish(new AdminError('unavailable', `cannot reach the daemon at ${socketPath} (${err.code ?? 'error'}): ${hint}`))
    })
    sock.on('data', (chunk: string) => {
      buf += chunk
      if (buf.length > ADMIN_MAX_LINE_BYTES) { finish(new AdminError('failed', 'answer from the daemon is too large')); return }
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let msg: AdminResponse
        try {
          msg = JSON.parse(line) as AdminResponse
        } catch {
          finish(new AdminError('failed', 'the daemon sent a malformed answer'))
          return
        }
        if (msg.type === 'event') opts.onEvent?.(msg.event)
        else if (msg.type === 'result') { finish(null, msg.result); return } else { finish(new AdminError(msg.error.code, msg.error.message)); return }
      }
    })
    // Once the request is sent, the daemon may have acted on it: say so by the code, 'no_answer'.
    sock.on('end', () => { finish(new AdminError(sent ? 'no_answer' : 'failed', 'the daemon closed the connection without an answer')) })
  })
}
