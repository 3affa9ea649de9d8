/**
 * The OpenAI-compatible front door on every node: POST /v1/chat/completions,
 * /v1/completions, /v1/embeddings, GET /v1/models and /v1/models/{id}. This file is the HTTP
 * side: auth, reading and checking the request, OpenAI errors, and relaying
 * the chosen member's answer as it streams. Where a request goes, waits and
 * is retried is proxy/forward.ts. After bytes have flowed there is no retry,
 * and a stream ends with an error event.
 *
 * Everything a client can send is bounded: body size (413, at once when the
 * declared length is over), body time (408), nesting depth, JSON and required
 * fields (400, body-check.ts; large bodies off the main thread,
 * body-parser.ts), max_tokens per model (400), API key (401), unknown model
 * (404, the name echoed cut short), and saturation (429 after the entry
 * queue's deadline). Errors are OpenAI error
 * objects; none of it can throw out of the handler.
 *
 * Each request fills in its access-log record (access-log.ts) as it goes:
 * model, who served it, the first byte, and the replica's token counts,
 * found when the line is written in the last chunks kept by reference
 * (usage.ts): nothing but a reference per chunk is added to the relay.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import { sendError, sendJson, type OpenAIError } from './errors.ts'
import { allowedMethods, allows, methodNotAllowed, sendOptions, MODEL_PREFIX } from './routes.ts'
import { REQUEST_ID_HEADER } from './request-id.ts'
import { BodyTail } from './usage.ts'
import type { Access } from './access-log.ts'
import type { UpstreamRequest, UpstreamResponse } from '../../mesh/infer/upstream.ts'
import type { Router } from '../proxy/router.ts'
import { forward } from '../proxy/forward.ts'
import { labelModel } from './request-labels.ts'
import type { BodyParser } from './body-parser.ts'
import type { BodyFacts } from './body-check.ts'

export interface ApiInit {
  selfId: string
  apiKeys: string[]
  maxBodyBytes: number
  bodyTimeoutMs: number
  queueTimeoutMs: number
  requestTimeoutMs: number
  /** The most `max_tokens` / `max_completion_tokens` a request may ask of a model (http.max_tokens, per model http.max_tokens_by_model). */
  maxTokens: number
  maxTokensByModel: Record<string, number>
}

/** Requests themselves are counted by the HTTP server (server.ts), labelled with the model named here. */
export interface ApiMetrics {
  ttft: { observe: (labels: { model: string }, v: number) => void }
  latency: { observe: (labels: { model: string }, v: number) => void }
  streamErrors: { inc: (labels: { model: string }) => void }
  retries: { inc: (labels: { reason: string }) => void }
  rejected: { inc: (labels: { reason: string }) => void }
  inflight: { inc: () => void, dec: () => void }
}

export interface ApiComponents {
  router: Router
  /** Checks request bodies: nesting, JSON, the fields acted on (large ones off the main thread). */
  parser: Pick<BodyParser, 'check'>
  metrics: ApiMetrics
  /** True once this node drains: it takes no new requests. */
  draining: () => boolean
  log: { warn: (o: object, msg: string) => void, debug: (o: object, msg: string) => void }
}

/** Request headers passed to the replica; everything else (cookies, credentials, hop-by-hop) stays here. */
const FORWARD_REQUEST_HEADERS = new Set(['content-type', 'accept', 'user-agent', 'openai-organization', 'openai-project', 'x-request-id'])
/** Response headers not passed back (hop-by-hop, or set by us: the request id is the entry node's). */
const DROP_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'server', 'x-meshd-served-by', 'content-length', REQUEST_ID_HEADER])
const SERVED_BY = 'x-meshd-served-by'
const BEARER = /^bearer +(\S+) *$/i
/** A model name is echoed in errors and logged up to this many characters: a client may send a megabyte. */
const MODEL_ECHO_MAX = 256

/** The model name for the access log, cut to MODEL_ECHO_MAX characters. */
function shortModel (model: string): string {
  return model.length <= MODEL_ECHO_MAX ? model : model.slice(0, MODEL_ECHO_MAX)
}

/** The model name quoted for an error message; a long one cut, saying so. */
function quoteModel (model: string): string {
  if (model.length <= MODEL_ECHO_MAX) return JSON.stringify(model)
  return `${JSON.stringify(model.slice(0, MODEL_ECHO_MAX))}… (truncated: ${model.length} characters)`
}

export class OpenAIApi {
  private readonly init: ApiInit
  private readonly c: ApiComponents
  private readonly keys: Buffer[]
  /** Requests accepted and not yet answered (waiting, dispatched or streaming): what a drain waits for. */
  active = 0
  /** When a request last started or ended here (a burst node's idle_timeout counts from it). */
  lastActivityAt = 0
  /** When this node first listed each model: a stable `created` for the model objects. */
  private readonly firstListed = new Map<string, number>()

  constructor (init: ApiInit, components: ApiComponents) {
    this.init = init
    this.c = components
    this.keys = init.apiKeys.map((k) => Buffer.from(k))
  }

  /** Entry point for every /v1/* request; `access` is its access-log record (its id is the request id). */
  handle (req: IncomingMessage, res: ServerResponse, access: Access): void {
    this.serve(req, res, access).catch((err: unknown) => {
      this.c.log.warn({ err }, 'front door request failed unexpectedly')
      this.fail(res, access, 'internal', { status: 500, type: 'server_error', code: 'internal_error', message: 'internal error in meshd' })
    })
  }

  private async serve (req: IncomingMessage, res: ServerResponse, access: Access): Promise<void> {
    const path = access.path
    const allowed = allowedMethods(path)
    if (allowed !== null && req.method === 'OPTIONS') {
      req.resume()
      sendOptions(res, allowed, { [SERVED_BY]: this.init.selfId })
      return
    }
    if (!this.authorized(req)) {
      req.resume()
      this.fail(res, access, 'unauthorized', { status: 401, type: 'authentication_error', code: 'invalid_api_key', message: 'missing or invalid API key: send Authorization: Bearer <key>' })
      return
    }
    if (allowed === null) {
      req.resume()
      this.fail(res, access, 'no_route', { status: 404, type: 'invalid_request_error', code: 'unknown_url', message: `no route for ${req.method ?? '?'} ${path}` })
      return
    }
    if (!allows(allowed, req.method)) {
      req.resume()
      this.fail(res, access, 'no_route', methodNotAllowed(allowed, req.method, path), { allow: allowed.join(', ') })
      return
    }
    if (path === '/v1/models') {
      this.listModels(res)
      return
    }
    if (path.startsWith(MODEL_PREFIX)) {
      this.retrieveModel(res, access, path.slice(MODEL_PREFIX.length))
      return
    }
    if (this.c.draining()) {
      req.resume()
      this.fail(res, access, 'draining', { status: 503, type: 'service_unavailable', code: 'draining', message: 'this node is draining; send requests to another member', retryAfterSeconds: 1 })
      return
    }
    const started = performance.now()
    const body = await readBody(req, res, this.init.maxBodyBytes, this.init.bodyTimeoutMs)
    if ('error' in body) {
      this.fail(res, access, body.error.code, body.error)
      return
    }
    const checked = await this.c.parser.check(body.bytes, path)
    if ('busy' in checked) {
      this.fail(res, access, 'parser_busy', { status: 503, type: 'service_unavailable', code: 'busy', message: `this node cannot take the request now: ${checked.busy}`, retryAfterSeconds: 1 })
      return
    }
    if ('problem' in checked) {
      const p = checked.problem
      this.fail(res, access, p.reason, { status: 400, type: 'invalid_request_error', code: p.code, message: p.message, ...(p.param !== undefined ? { param: p.param } : {}) })
      return
    }
    const fields = checked.facts
    access.model = shortModel(fields.model)
    const over = fields.maxTokens !== undefined ? this.tokenLimitProblem(fields.model, fields.maxTokens) : null
    if (over !== null) {
      this.fail(res, access, 'max_tokens', over)
      return
    }
    access.stream = fields.stream === true
    this.active++
    this.lastActivityAt = Date.now()
    try {
      await this.proxy(req, res, access, path, fields.model, body.bytes, started)
    } finally {
      this.active--
      this.lastActivityAt = Date.now()
    }
  }

  private async proxy (req: IncomingMessage, res: ServerResponse, access: Access, path: string, model: string, body: Buffer, started: number): Promise<void> {
    const gone = new AbortController()
    res.on('close', () => { if (!res.writableFinished) gone.abort() })
    const id = access.id
    const upReq: UpstreamRequest = {
      id,
      method: 'POST',
      path,
      headers: forwardHeaders(req, id),
      body,
      model,
      deadline: Date.now() + this.init.requestTimeoutMs
    }
    const outcome = await forward(this.c.router, upReq, {
      queueTimeoutMs: this.init.queueTimeoutMs,
      signal: gone.signal,
      onRetry: (reason) => { this.c.metrics.retries.inc({ reason }) },
      log: this.c.log
    })
    // A label only ever holds a model the mesh serves: what a client sends is unbounded.
    labelModel(res, outcome.kind === 'unknown_model' ? 'other' : model)
    switch (outcome.kind) {
      case 'answered':
        await this.relay(res, access, outcome.up, model, started, gone.signal)
        return
      case 'gone':
        return
      case 'no_ready_replica':
        this.fail(res, access, 'no_ready_replica', { status: 503, type: 'service_unavailable', code: 'no_ready_replica', message: `no member has a ready replica for model ${quoteModel(model)}`, retryAfterSeconds: 5 })
        return
      case 'unknown_model':
        this.fail(res, access, 'unknown_model', { status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model', message: `the model ${quoteModel(model)} is not served by any member of the mesh` })
        return
      case 'saturated':
        this.fail(res, access, 'saturated', { status: 429, type: 'rate_limit_error', code: 'saturated', message: `every member serving ${quoteModel(model)} is saturated; retry later`, retryAfterSeconds: 2 })
        return
      case 'failed': {
        const e = outcome.error
        this.fail(res, access, 'upstream_failed', { status: e.code === 'deadline_exceeded' ? 504 : 502, type: 'server_error', code: e.code, message: `no member could serve the request: ${e.message}` })
      }
    }
  }

  /** Streams the member's answer to the client chunk by chunk, as it arrives. */
  private async relay (res: ServerResponse, access: Access, up: UpstreamResponse, model: string, started: number, gone: AbortSignal): Promise<void> {
    access.servedBy = up.servedBy
    const onGone = (): void => { up.abort(new Error('client went away')) }
    gone.addEventListener('abort', onGone, { once: true })
    const headers: Array<[string, string]> = []
    let sse = false
    for (const [k, v] of up.headers) {
      const key = k.toLowerCase()
      if (DROP_RESPONSE_HEADERS.has(key)) continue
      if (key === 'content-type' && v.startsWith('text/event-stream')) sse = true
      headers.push([k, v])
    }
    headers.push([SERVED_BY, up.servedBy])
    res.writeHead(up.status, headers.flat())
    if (sse) res.flushHeaders()
    this.c.metrics.inflight.inc()
    let firstByte = true
    const tail = new BodyTail()
    access.tail = tail
    try {
      for await (const chunk of up.body) {
        if (firstByte) {
          firstByte = false
          access.firstByte = performance.now()
          this.c.metrics.ttft.observe({ model }, (access.firstByte - started) / 1000)
        }
        tail.keep(chunk)
        if (!res.write(chunk)) await drained(res, gone)
        if (gone.aborted) return
      }
      res.end()
      this.c.metrics.latency.observe({ model }, (performance.now() - started) / 1000)
    } catch (err) {
      if (gone.aborted) return
      access.error = 'upstream_failed'
      this.c.metrics.streamErrors.inc({ model })
      this.c.log.debug({ member: up.servedBy, err: (err as Error).message }, 'answer broke off mid-stream')
      if (sse) {
        // After bytes have flowed there is no retry: end the stream with an error event.
        const event = { error: { message: `the serving member failed mid-stream: ${(err as Error).message}`, type: 'server_error', code: 'upstream_failed' } }
        res.end(`data: ${JSON.stringify(event)}\n\n`)
      } else {
        res.destroy(err as Error)
      }
    } finally {
      gone.removeEventListener('abort', onGone)
      this.c.metrics.inflight.dec()
    }
  }

  private listModels (res: ServerResponse): void {
    const data = [...this.c.router.models()].sort(([a], [b]) => a.localeCompare(b)).map(([id, ready]) => this.modelObject(id, ready))
    sendJson(res, 200, { object: 'list', data }, { [SERVED_BY]: this.init.selfId })
  }

  /**
   * GET /v1/models/{id}: the id is everything after the prefix, URL-decoded,
   * matched exactly (case and all). So `meta-llama/Llama-3-8B` is found sent
   * as the openai client sends it (`meta-llama%2FLlama-3-8B`) and as curl
   * users type it (`/v1/models/meta-llama/Llama-3-8B`); `llama3:8b` as is or
   * as `llama3%3A8b`.
   */
  private retrieveModel (res: ServerResponse, access: Access, raw: string): void {
    let id: string
    try {
      id = decodeURIComponent(raw)
    } catch {
      this.fail(res, access, 'bad_request', { status: 400, type: 'invalid_request_error', code: 'invalid_model_id', message: `the model id in ${access.path} is not valid URL encoding` })
      return
    }
    access.model = shortModel(id)
    const ready = this.c.router.models().get(id)
    if (ready === undefined) {
      this.fail(res, access, 'unknown_model', { status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model', message: `the model ${quoteModel(id)} is not served by any member of the mesh` })
      return
    }
    sendJson(res, 200, this.modelObject(id, ready), { [SERVED_BY]: this.init.selfId })
  }

  /** OpenAI's model object; `meshd.ready_members` says how many members can serve it now. */
  private modelObject (id: string, ready: number): { id: string, object: 'model', created: number, owned_by: string, meshd: { ready_members: number } } {
    let created = this.firstListed.get(id)
    if (created === undefined) {
      created = Math.floor(Date.now() / 1000)
      this.firstListed.set(id, created)
    }
    return { id, object: 'model', created, owned_by: 'meshd', meshd: { ready_members: ready } }
  }

  private authorized (req: IncomingMessage): boolean {
    if (this.keys.length === 0) return true
    // The scheme is case-insensitive (RFC 9110, 11.1): `bearer` and `BEARER` are Bearer.
    const m = BEARER.exec(req.headers.authorization ?? '')
    if (m === null) return false
    const given = Buffer.from(m[1]!)
    return this.keys.some((k) => k.length === given.length && timingSafeEqual(k, given))
  }

  /**
   * The 400 for a `max_tokens` above the cap for `model`, or null. The cap is
   * the entry node's config, not the serving member's: the front door that
   * faces the clients is where an operator bounds what one request may ask
   * (as max_body_bytes is), it is known before the pick (so the answer is the
   * same whichever member would serve, and a refused request costs no hop),
   * and it needs nothing new in the heartbeat. The engine still enforces its
   * own context length behind it.
   */
  private tokenLimitProblem (model: string, asked: NonNullable<BodyFacts['maxTokens']>): OpenAIError | null {
    const limit = this.init.maxTokensByModel[model] ?? this.init.maxTokens
    if (asked.value <= limit) return null
    return { status: 400, type: 'invalid_request_error', code: 'max_tokens_too_large', param: asked.param, message: `\`${asked.param}\` is ${asked.value}, above this mesh's limit of ${limit} for model ${quoteModel(model)}` }
  }

  private fail (res: ServerResponse, access: Access, reason: string, err: OpenAIError, headers: Record<string, string> = {}): void {
    access.error = err.code
    this.c.metrics.rejected.inc({ reason })
    sendError(res, err, { [SERVED_BY]: this.init.selfId, ...headers })
  }
}

function forwardHeaders (req: IncomingMessage, id: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || !FORWARD_REQUEST_HEADERS.has(k) || k === REQUEST_ID_HEADER) continue
    out.push([k, Array.isArray(v) ? v.join(', ') : v])
  }
  out.push([REQUEST_ID_HEADER, id])
  return out
}

type BodyResult = { bytes: Buffer } | { error: OpenAIError & { code: string } }

/**
 * After an early 413 the rest of the body is read and thrown away, up to this
 * many bytes in all: a client still sending when the server answers and
 * closes sees a broken pipe instead of the 413. Past it, the connection is cut.
 */
const DISCARD_LIMIT = 256 * 1024 * 1024

/**
 * Reads the request body within a size and a time limit. A body over the
 * limit is answered 413 at once: when its declared Content-Length says so,
 * before a byte of it is read (and with `Expect: 100-continue`, before the
 * client is told to send it); else as soon as the count passes the limit.
 * The rest is discarded in the background (discard()).
 */
function readBody (req: IncomingMessage, res: ServerResponse, max: number, timeoutMs: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (declared > max) {
    if (expectsContinue(req) || declared > DISCARD_LIMIT) res.shouldKeepAlive = false // the body will not come, or is not worth reading
    else discard(req, res, 0, timeoutMs)
    return Promise.resolve({ error: tooLarge(max) })
  }
  if (expectsContinue(req)) res.writeContinue()
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (r: BodyResult): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      resolve(r)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength
      if (size <= max) {
        chunks.push(chunk)
        return
      }
      chunks.length = 0
      finish({ error: tooLarge(max) })
      discard(req, res, size, timeoutMs)
    }
    const onEnd = (): void => { finish({ bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) }) }
    const onError = (): void => { finish({ error: { status: 400, type: 'invalid_request_error', code: 'body_error', message: 'the request body could not be read' } }) }
    const timer = setTimeout(() => {
      res.shouldKeepAlive = false
      finish({ error: { status: 408, type: 'invalid_request_error', code: 'body_timeout', message: `the request body did not arrive within ${Math.round(timeoutMs / 1000)} s` } })
    }, timeoutMs)
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

/** Whether the client waits for `100 Continue` before it sends the body (Node then leaves the answer to us). */
function expectsContinue (req: IncomingMessage): boolean {
  const e = req.headers.expect
  return e !== undefined && e.toLowerCase() === '100-continue'
}

/**
 * Reads and drops the rest of a body already answered 413, so that the
 * connection stays usable and the client reads the answer; past DISCARD_LIMIT
 * bytes or the body timeout, the connection is cut.
 */
function discard (req: IncomingMessage, res: ServerResponse, seen: number, timeoutMs: number): void {
  if (req.complete) return
  let total = seen
  const stop = (): void => {
    clearTimeout(timer)
    req.off('data', onData)
    req.off('end', stop)
    req.off('close', stop)
  }
  const cut = (): void => {
    stop()
    res.shouldKeepAlive = false
    // After the 413 has gone out, if it is still being written.
    if (res.writableFinished) req.socket.destroy()
    else res.once('finish', () => { req.socket.destroy() })
  }
  const onData = (chunk: Buffer): void => {
    total += chunk.byteLength
    if (total > DISCARD_LIMIT) cut()
  }
  const timer = setTimeout(cut, timeoutMs)
  req.on('data', onData)
  req.once('end', stop)
  req.once('close', stop)
}

function tooLarge (max: number): OpenAIError & { code: string } {
  return { status: 413, type: 'invalid_request_error', code: 'request_too_large', message: `the request body exceeds ${max} bytes` }
}

function drained (res: ServerResponse, gone: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => { res.off('drain', done); gone.removeEventListener('abort', done); resolve() }
    res.once('drain', done)
    gone.addEventListener('abort', done, { once: true })
  })
}
