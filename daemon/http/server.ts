/**
 * The HTTP listener on http.listen: GET /health, GET /metrics, and the
 * OpenAI-compatible routes (added by the front door). Routing is a plain
 * switch on method and path: there are few routes and this is the hot path.
 * Every response carries `x-request-id` (request-id.ts), and every request
 * gets one access-log line when its response is over (access-log.ts).
 *
 * Connections are capped (connection-cap.ts); /health answers 503 while the
 * server is at the cap or the process is out of descriptors (descriptors.ts),
 * with the reason, whatever the rest of the node says.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Registry } from 'prom-client'
import { sendError, sendJson } from './errors.ts'
import { parseHostPort } from './listen.ts'
import { REQUEST_ID_HEADER, requestIdOf } from './request-id.ts'
import { allowedMethods, allows, methodNotAllowed, sendOptions } from './routes.ts'
import type { Access, AccessLog } from './access-log.ts'
import type { Startable } from '../../mesh/startable.ts'
import { modelLabel, routeLabel } from './request-labels.ts'
import { ConnectionCap, OVERFLOW_TIMEOUT_MS } from './connection-cap.ts'

export interface Health { ok: boolean, reason: string, detail?: Record<string, unknown> }

/** Handles a request; `access` is its access-log record, to fill in (its `id` is the request id). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, access: Access) => void

export interface HttpServerInit {
  listen: string
  selfId: string
  /** http.max_connections. @default 4096 */
  maxConnections?: number
}

export interface HttpServerComponents {
  registry: Registry
  /** `meshd_http_requests_total`: every request counted once, when its response closes. */
  requests?: { inc: (labels: { route: string, code: string, model: string }) => void }
  health: () => Health
  /** The OpenAI routes; absent until the front door is wired in. */
  api?: RouteHandler
  /** Writes each request's access-log line; absent: none. */
  access?: AccessLog
  /** Why the process cannot take connections (descriptors exhausted), or null. */
  descriptors?: { problem: () => string | null }
  log: { warn: (o: object, msg: string) => void }
}

export class HttpServer implements Startable {
  private readonly init: HttpServerInit
  private readonly c: HttpServerComponents
  private server: Server | undefined
  readonly cap: ConnectionCap
  port = 0

  constructor (init: HttpServerInit, components: HttpServerComponents) {
    this.init = init
    this.c = components
    this.cap = new ConnectionCap(init.maxConnections ?? 4096, { log: components.log })
  }

  async start (): Promise<void> {
    const { host, port } = parseHostPort(this.init.listen)
    const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => { this.route(req, res) })
    // With `Expect: 100-continue` the front door decides: a request it refuses
    // (401, 404, 413 ...) is answered before the client sends the body, and
    // the connection is then closed (the body will not come).
    server.on('checkContinue', (req, res) => {
      res.shouldKeepAlive = false
      this.route(req, res)
    })
    server.on('connection', (socket: Socket) => {
      const a = this.cap.admit(socket)
      if (a === 'drop') {
        socket.destroy()
      } else if (a === 'refuse') {
        socket.setTimeout(OVERFLOW_TIMEOUT_MS, () => { socket.destroy() })
      }
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
    const addr = server.address()
    this.port = typeof addr === 'object' && addr !== null ? addr.port : port
  }

  /**
   * Stops accepting connections; idle keep-alive sockets are closed at once,
   * busy ones get `graceMs` to finish (the drain already waited for requests).
   */
  async stop (graceMs = 2000): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => { server.closeAllConnections() }, graceMs)
      server.close(() => { clearTimeout(force); resolve() })
      server.closeIdleConnections()
    })
  }

  closeAllConnections (): void {
    this.server?.closeAllConnections()
  }

  private route (req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    const requests = this.c.requests
    if (requests !== undefined) res.once('close', () => { countRequest(requests, path, res) })
    const id = requestIdOf(req.headers[REQUEST_ID_HEADER])
    res.setHeader(REQUEST_ID_HEADER, id)
    const access: Access = this.c.access?.begin(req, res, id, path) ?? { id, method: req.method ?? 'GET', path, started: performance.now() }
    if (this.cap.refuses(req.socket)) {
      this.refuseOverCap(req, res, access, path)
      return
    }
    try {
      if (path.startsWith('/v1/') && this.c.api !== undefined) {
        this.c.api(req, res, access)
        return
      }
      const allowed = allowedMethods(path)
      if (allowed === null || path.startsWith('/v1/')) {
        req.resume()
        access.error = 'not_found'
        sendError(res, { status: 404, type: 'not_found_error', code: 'not_found', message: `no route for ${req.method ?? 'GET'} ${path}` }, { 'x-meshd-served-by': this.init.selfId })
        return
      }
      if (req.method === 'OPTIONS') {
        req.resume()
        sendOptions(res, allowed, { 'x-meshd-served-by': this.init.selfId })
        return
      }
      if (!allows(allowed, req.method)) {
        req.resume()
        access.error = 'method_not_allowed'
        sendError(res, methodNotAllowed(allowed, req.method, path), { allow: allowed.join(', '), 'x-meshd-served-by': this.init.selfId })
        return
      }
      if (path === '/health') {
        const h = this.health()
        sendJson(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'unavailable', reason: h.reason, ...h.detail }, { 'x-meshd-served-by': this.init.selfId })
        return
      }
      // Else /metrics: allowedMethods() knows no other path outside /v1/.
      this.c.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': this.c.registry.contentType })
        res.end(text)
      }, (err: Error) => { sendError(res, { status: 500, type: 'server_error', code: 'metrics_failed', message: err.message }) })
    } catch (err) {
      this.c.log.warn({ err, path }, 'request handler failed')
      access.error = 'internal_error'
      sendError(res, { status: 500, type: 'server_error', code: 'internal_error', message: 'internal error' })
    }
  }

  /** The node's health, unless the front door itself cannot take connections. */
  private health (): Health {
    const problem = this.cap.problem() ?? this.c.descriptors?.problem() ?? null
    return problem !== null ? { ok: false, reason: problem } : this.c.health()
  }

  /** A request on a connection past the cap: 503 (for /health in its own shape), then the connection closes. */
  private refuseOverCap (req: IncomingMessage, res: ServerResponse, access: Access, path: string): void {
    req.resume()
    res.shouldKeepAlive = false
    access.error = 'too_many_connections'
    const reason = `too many connections: http.max_connections is ${this.cap.max}`
    const headers = { 'x-meshd-served-by': this.init.selfId, 'retry-after': '1' }
    if (path === '/health') {
      sendJson(res, 503, { status: 'unavailable', reason }, headers)
      return
    }
    sendError(res, { status: 503, type: 'service_unavailable', code: 'too_many_connections', message: `this node has ${reason}; retry later or use another member` }, headers)
  }
}

/**
 * Counted when the response closes, whoever answered: the status sent, or
 * 499 (nginx's "client closed request") when the client went away before
 * any status was sent. An answer that broke off after its status went out
 * keeps that status here and is counted in meshd_http_stream_errors_total.
 */
function countRequest (requests: NonNullable<HttpServerComponents['requests']>, path: string, res: ServerResponse): void {
  requests.inc({ route: routeLabel(path), code: res.headersSent ? String(res.statusCode) : '499', model: modelLabel(res) })
}
