/**
 * The daemon side of the admin socket: a unix socket, mode 0660, in a
 * directory only the daemon's user and group can enter, so only they can
 * drive the daemon. Handlers are registered per method; a handler may stream
 * progress events before its result.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net'
import { chmodSync, mkdirSync, unlinkSync, existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { ADMIN_PROTOCOL_VERSION, ADMIN_MAX_LINE_BYTES, parseRequest, type AdminMethod, type AdminErrorCode } from './protocol.ts'
import type { Startable } from '../../mesh/startable.ts'

export class AdminRequestError extends Error {
  readonly code: AdminErrorCode
  constructor (code: AdminErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

export type AdminHandler = (params: Record<string, unknown>, emit: (event: Record<string, unknown>) => void, signal: AbortSignal) => Promise<unknown>

export interface AdminServerInit {
  socketPath: string
  /** A connection that has not sent its request line within this long is closed (admin.idle_timeout). @default 10000 */
  idleTimeoutMs?: number
  log: { warn: (o: object, msg: string) => void, debug: (o: object, msg: string) => void }
}

export class AdminServer implements Startable {
  private readonly init: AdminServerInit
  private readonly handlers = new Map<AdminMethod, AdminHandler>()
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()

  constructor (init: AdminServerInit) {
    this.init = init
  }

  handle (method: AdminMethod, handler: AdminHandler): void {
    this.handlers.set(method, handler)
  }

  async start (): Promise<void> {
    const path = this.init.socketPath
    mkdirSync(dirname(path), { recursive: true, mode: 0o750 })
    if (existsSync(path)) {
      // EADDRINUSE: the start reports it as the admin.socket address in use (daemon/startup/listen-errors.ts).
      if (await isListening(path)) throw Object.assign(new Error(`another meshd daemon is already answering on ${path}`), { code: 'EADDRINUSE', address: path })
      unlinkSync(path) // left behind by a daemon that crashed
    }
    const server = createServer((sock) => { this.serve(sock) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => { server.off('error', reject); resolve() })
    })
    this.server = server
    chmodSync(path, 0o660)
  }

  async stop (): Promise<void> {
    const server = this.server
    // Never unlink a socket we did not bind: it may be another daemon's.
    if (server === undefined) return
    this.server = undefined
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    try { unlinkSync(this.init.socketPath) } catch {}
  }

  private serve (sock: Socket): void {
    this.sockets.add(sock)
    const abort = new AbortController()
    sock.on('close', () => { this.sockets.delete(sock); abort.abort() })
    sock.on('error', () => {})
    sock.setEncoding('utf8')
    // Idle until the request line is in; a request being served (burst --wait
    // streams for minutes) is not cut.
    sock.setTimeout(this.init.idleTimeoutMs ?? 10_000, () => {
      this.init.log.debug({}, 'admin connection idle: closed')
      sock.destroy()
    })
    let buf = ''
    let started = false
    sock.on('data', (chunk: string) => {
      if (started) return
      buf += chunk
      if (buf.length > ADMIN_MAX_LINE_BYTES) { this.reply(sock, { type: 'error', error: { code: 'bad_request', message: 'request too large' } }); sock.end(); return }
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      started = true
      sock.setTimeout(0)
      void this.dispatch(sock, buf.slice(0, nl), abort.signal)
    })
  }

  private async dispatch (sock: Socket, line: string, signal: AbortSignal): Promise<void> {
    const req = parseRequest(line)
    if (typeof req === 'string') {
      this.reply(sock, { type: 'error', error: { code: 'bad_request', message: req } })
      sock.end()
      return
    }
    const handler = this.handlers.get(req.method)
    if (handler === undefined) {
      this.reply(sock, { type: 'error', error: { code: 'unknown_method', message: `this daemon does not implement ${req.method}` } })
      sock.end()
      return
    }
    try {
      const result = await handler(req.params ?? {}, (event) => { this.reply(sock, { type: 'event', event }) }, signal)
      this.reply(sock, { type: 'result', result })
    } catch (err) {
      const code = err instanceof AdminRequestError ? err.code : 'failed'
      if (!(err instanceof AdminRequestError)) this.init.log.warn({ err, method: req.method }, 'admin request failed')
      this.reply(sock, { type: 'error', error: { code, message: (err as Error).message } })
    }
    sock.end()
  }

  private reply (sock: Socket, body: Record<string, unknown>): void {
    if (sock.destroyed) return
    sock.write(JSON.stringify({ v: ADMIN_PROTOCOL_VERSION, ...body }) + '\n')
  }
}

function isListening (path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path)
    c.once('connect', () => { c.destroy(); resolve(true) })
    c.once('error', () => { resolve(false) })
  })
}
