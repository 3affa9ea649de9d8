// The simulated inference server: OpenAI-compatible HTTP in front of the
// scheduler, plus the health, metrics and slots endpoints engines expose.
//
// Admission order for an inference request: body parsed and validated (400),
// model known (404), draining/loading (503), simulated failure (500), queue
// room (503 + Retry-After). Past that point the request is committed: streams
// get their 200 at once, and only the client hanging up stops the request.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CompletionJob, type CompletionKind, type JobObserver, type WireJob } from './completion-job.ts'
import { EmbeddingJob } from './embedding-job.ts'
import { apiError, sendError, sendJson, unavailable, type ApiError } from './errors.ts'
import { EngineCounters, renderMetrics, type RejectReason } from './metrics.ts'
import { Scheduler } from './scheduler.ts'
import {
  ChatCompletionRequestV1,
  CompletionRequestV1,
  EmbeddingRequestV1,
  SIM_SCHEMA_VERSION,
  parseBody,
} from './schema.ts'
import { DEFAULT_OPTIONS, type SimOptions } from './options.ts'
import { estimateTokens, hashText, piecesUntilStop } from './text.ts'

/** The subset of a pino logger the server uses; the default discards everything. */
export interface SimLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

const SILENT: SimLogger = { debug() {}, info() {}, warn() {}, error() {} }

export interface SimServerOptions extends Partial<SimOptions> {
  log?: SimLogger
}

export interface SimStats {
  /** Requests holding a slot or waiting for one. */
  inflight: number
  processing: number
  deferred: number
  slots: number
  ready: boolean
  draining: boolean
  completed: number
  cancelled: number
  rejected: number
  promptTokens: number
  generatedTokens: number
}

export interface SimServer {
  readonly url: string
  readonly port: number
  /** Immediate stop: cuts every request and connection. Idempotent. */
  close(): Promise<void>
  /** Graceful stop: refuse new requests with 503, finish queued and running ones, then close. */
  drain(): Promise<void>
  stats(): SimStats
}

const MAX_BODY_BYTES = 16 * 1024 * 1024
const DRAIN_POLL_MS = 25

export async function startSimServer(opts: SimServerOptions = {}): Promise<SimServer> {
  const { log, ...rest } = opts
  const options: SimOptions = { ...DEFAULT_OPTIONS, ...stripUndefined(rest) }
  if (options.models.length === 0) throw new Error('startSimServer: at least one model is required')
  const sim = new SimHttp(options, log ?? SILENT)
  await sim.listen()
  return sim
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

class SimHttp implements SimServer, JobObserver {
  url = ''
  port = 0
  private readonly opts: SimOptions
  private readonly log: SimLogger
  private readonly counters = new EngineCounters()
  private readonly scheduler: Scheduler
  private readonly server: Server
  private readonly models: ReadonlySet<string>
  private readonly modelsBody: string
  private readonly readyAt: number
  private draining = false
  private failDebt = 0
  private completed = 0
  private cancelled = 0
  private stopping: Promise<void> | null = null
  private closed: Promise<void> | null = null
  private drainPoll: NodeJS.Timeout | null = null

  constructor(opts: SimOptions, log: SimLogger) {
    this.opts = opts
    this.log = log
    this.readyAt = performance.now() + opts.readyAfterMs
    this.models = new Set(opts.models)
    this.scheduler = new Scheduler(opts, this.counters)
    const created = Math.floor(Date.now() / 1000)
    this.modelsBody = JSON.stringify({
      object: 'list',
      meshd_simulator: true,
      meshd_sim_schema: SIM_SCHEMA_VERSION,
      data: opts.models.map((id) => modelEntry(id, created)),
    })
    this.server = createServer((req, res) => this.route(req, res))
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      this.server.once('error', onError)
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onError)
        this.server.on('error', (err) => this.log.error({ err: err.message }, 'server error'))
        this.port = (this.server.address() as AddressInfo).port
        const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host
        this.url = `http://${host}:${this.port}`
        resolve()
      })
    })
  }

  stats(): SimStats {
    const s = this.scheduler
    const r = this.counters.rejected
    return {
      inflight: s.running + s.waiting,
      processing: s.running,
      deferred: s.waiting,
      slots: s.slots,
      ready: this.isReady(),
      draining: this.draining,
      completed: this.completed,
      cancelled: this.cancelled,
      rejected: r.queue_full + r.draining + r.loading + r.simulated_failure,
      promptTokens: this.counters.promptTokens,
      generatedTokens: this.counters.generatedTokens,
    }
  }

  drain(): Promise<void> {
    if (this.stopping) return this.stopping
    this.draining = true
    this.log.info({ inflight: this.scheduler.running + this.scheduler.waiting }, 'draining')
    this.stopping = this.scheduler.whenIdle().then(() => this.shutDown(false))
    return this.stopping
  }

  close(): Promise<void> {
    this.draining = true
    const done = this.shutDown(true)
    this.stopping ??= done
    return done
  }

  ended(job: WireJob): void {
    if (job.cancelled) this.cancelled++
    else this.completed++
    this.log.debug(
      {
        route: job.route,
        model: job.model,
        prompt_tokens: job.promptTokens,
        completion_tokens: job.emitted,
        finish: job.cancelled ? 'abort' : job.finishReason,
        queue_ms: Math.round(job.startedAt > 0 ? job.startedAt - job.enqueuedAt : performance.now() - job.enqueuedAt),
        total_ms: Math.round(performance.now() - job.enqueuedAt),
      },
      'request',
    )
  }

  /**
   * Stops listening and resolves once every connection is gone. Forced, it
   * cuts requests and connections at once; it may follow a graceful call that
   * is still waiting for connections, and then cuts those.
   */
  private shutDown(force: boolean): Promise<void> {
    if (force) this.scheduler.cancelAll()
    this.closed ??= new Promise((resolve) => {
      this.server.close(() => {
        if (this.drainPoll) clearInterval(this.drainPoll)
        this.drainPoll = null
        resolve()
      })
      if (!force) {
        // Keep-alive connections become idle only once their last response has
        // flushed; close them as they do instead of cutting a response short.
        this.server.closeIdleConnections()
        this.drainPoll = setInterval(() => this.server.closeIdleConnections(), DRAIN_POLL_MS)
      }
    })
    if (force) this.server.closeAllConnections()
    return this.closed
  }

  private isReady(): boolean {
    return this.opts.readyAfterMs <= 0 || performance.now() >= this.readyAt
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? '/'
    const q = raw.indexOf('?')
    const path = q === -1 ? raw : raw.slice(0, q)
    const method = req.method ?? 'GET'
    switch (path) {
      case '/v1/chat/completions':
        if (method === 'POST') return this.guard(res, this.inference(req, res, 'chat'))
        break
      case '/v1/completions':
        if (method === 'POST') return this.guard(res, this.inference(req, res, 'text'))
        break
      case '/v1/embeddings':
        if (method === 'POST') return this.guard(res, this.inference(req, res, 'embeddings'))
        break
      case '/v1/models':
        if (method === 'GET') return sendJson(res, 200, this.modelsBody)
        break
      case '/health':
        if (method === 'GET') return this.health(res)
        break
      case '/metrics':
        if (method === 'GET') return this.metrics(res)
        break
      case '/slots':
        if (method === 'GET') return this.slots(res)
        break
      default:
        if (path.startsWith('/v1/models/') && method === 'GET') return this.model(res, path.slice('/v1/models/'.length))
        return sendError(res, apiError(404, `Unknown request URL: ${method} ${path}.`, 'unknown_url'))
    }
    sendError(res, apiError(405, `Method ${method} is not allowed on ${path}.`, 'method_not_allowed'), { allow: method === 'GET' ? 'POST' : 'GET' })
  }

  /** An inference handler that throws is a simulator bug: log it and answer 500 rather than crash. */
  private guard(res: ServerResponse, p: Promise<void>): void {
    p.catch((err: unknown) => {
      this.log.error({ err: err instanceof Error ? err.stack : String(err) }, 'request handler failed')
      if (!res.headersSent) sendError(res, apiError(500, 'Internal simulator error.', 'internal_error'))
      else res.destroy()
    })
  }

  private health(res: ServerResponse): void {
    if (this.draining) return sendJson(res, 503, '{"status":"draining"}', { connection: 'close' })
    if (!this.isReady()) return sendJson(res, 503, '{"status":"loading"}', { 'retry-after': '1' })
    sendJson(res, 200, '{"status":"ok"}')
  }

  private metrics(res: ServerResponse): void {
    const s = this.scheduler
    const body = renderMetrics(
      this.counters,
      { running: s.running, waiting: s.waiting, slots: s.slots, queueLimit: this.opts.queueLimit, draining: this.draining, ready: this.isReady() },
      this.opts.models[0] as string,
    )
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }

  private slots(res: ServerResponse): void {
    const out = []
    for (let id = 0; id < this.scheduler.slots; id++) {
      const job = this.scheduler.slotJob(id)
      out.push({
        id,
        id_task: job ? job.taskId : -1,
        is_processing: job !== null,
        model: job ? (job as WireJob).model : null,
        next_token: {
          has_next_token: job !== null,
          n_remain: job ? job.tokens - job.emitted : -1,
          n_decoded: job ? job.emitted : 0,
        },
      })
    }
    sendJson(res, 200, JSON.stringify(out))
  }

  private model(res: ServerResponse, rawId: string): void {
    let id: string
    try {
      id = decodeURIComponent(rawId)
    } catch {
      id = rawId
    }
    if (!this.models.has(id)) return sendError(res, modelNotFound(id))
    sendJson(res, 200, JSON.stringify(modelEntry(id, Math.floor(Date.now() / 1000))))
  }

  private async inference(req: IncomingMessage, res: ServerResponse, kind: CompletionKind | 'embeddings'): Promise<void> {
    let job: WireJob | null = null
    let gone = false
    res.once('close', () => {
      gone = true
      // 'close' also follows a normal end; only a request still in the engine is a hang-up.
      if (job !== null && job.state !== 'done') {
        this.scheduler.cancel(job)
        this.ended(job)
      }
    })
    const body = await readJson(req)
    if (gone) return
    if (!body.ok) return sendError(res, body.error)
    const built = kind === 'embeddings' ? this.embeddingJob(res, body.value) : this.completionJob(res, kind, body.value)
    if (!built.ok) return sendError(res, built.error)
    const refused = this.admission()
    if (refused) {
      this.counters.rejected[refused.reason]++
      return sendError(res, refused.error, this.draining ? { connection: 'close' } : undefined)
    }
    job = built.job
    if (job instanceof CompletionJob) job.begin()
    // Cannot fail: admission() saw room and nothing ran since. Never leave a committed stream hanging, though.
    if (!this.scheduler.submit(job)) res.destroy()
  }

  /** Why a valid request cannot enter the engine now, if it cannot. */
  private admission(): { reason: RejectReason; error: ApiError } | null {
    if (this.draining) return { reason: 'draining', error: unavailable('The engine is shutting down; retry on another replica.', 'engine_draining') }
    if (!this.isReady()) return { reason: 'loading', error: unavailable('Loading model.', 'engine_loading') }
    if (this.opts.failRate > 0) {
      this.failDebt += this.opts.failRate
      // Error diffusion: exactly failRate of requests fail, spread evenly and reproducibly.
      if (this.failDebt >= 1 - 1e-9) {
        this.failDebt -= 1
        return { reason: 'simulated_failure', error: apiError(500, 'Simulated engine failure (--fail-rate).', 'simulated_failure') }
      }
    }
    if (!this.scheduler.hasRoom()) {
      return { reason: 'queue_full', error: unavailable('The engine is overloaded: every slot is busy and the queue is full.', 'engine_overloaded') }
    }
    return null
  }

  private checkModel(model: string): ApiError | null {
    return this.models.has(model) ? null : modelNotFound(model)
  }

  private completionJob(res: ServerResponse, kind: CompletionKind, body: unknown): Built {
    const parsed = kind === 'chat' ? parseBody(ChatCompletionRequestV1, body) : parseBody(CompletionRequestV1, body)
    if (!parsed.ok) return parsed
    const r = parsed.value
    const bad = this.checkModel(r.model)
    if (bad) return { ok: false, error: bad }
    if (r.n != null && r.n !== 1) return fail(apiError(400, 'The simulator supports only n=1.', 'unsupported_value', 'n'))
    if (r.stream_options != null && r.stream !== true) {
      return fail(apiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'invalid_value', 'stream_options'))
    }
    const prompt = 'messages' in r ? chatPrompt(r.messages) : textPrompt(r.prompt)
    if (typeof prompt === 'string') return fail(apiError(400, prompt, 'unsupported_value', 'prompt'))
    const maxTokens = r.max_completion_tokens ?? r.max_tokens ?? this.opts.maxTokens
    const seed = hashText(prompt.text)
    const stops = typeof r.stop === 'string' ? [r.stop] : (r.stop ?? [])
    const job = new CompletionJob(
      res,
      {
        kind,
        model: r.model,
        promptTokens: prompt.tokens,
        maxTokens,
        seed,
        pieces: stops.length > 0 ? piecesUntilStop(seed, maxTokens, stops) : null,
        stream: r.stream === true,
        includeUsage: r.stream === true && r.stream_options?.include_usage === true,
      },
      this,
    )
    return { ok: true, job }
  }

  private embeddingJob(res: ServerResponse, body: unknown): Built {
    const parsed = parseBody(EmbeddingRequestV1, body)
    if (!parsed.ok) return parsed
    const r = parsed.value
    const bad = this.checkModel(r.model)
    if (bad) return { ok: false, error: bad }
    const { texts, tokens } = embeddingInputs(r.input)
    const dims = r.dimensions ?? this.opts.embeddingDim
    return { ok: true, job: new EmbeddingJob(res, r.model, texts, tokens, dims, r.encoding_format === 'base64', this) }
  }
}

type Built = { ok: true; job: WireJob } | { ok: false; error: ApiError }

function fail(error: ApiError): Built {
  return { ok: false, error }
}

function modelNotFound(model: string): ApiError {
  return apiError(404, `The model '${model}' does not exist or is not served by this replica.`, 'model_not_found', 'model')
}

function modelEntry(id: string, created: number): object {
  return { id, object: 'model', created, owned_by: 'meshd-sim', meshd_simulator: true }
}

interface Prompt {
  text: string
  tokens: number
}

type Content = string | { type: string; text?: string | undefined }[] | null | undefined

function contentText(c: Content): string {
  if (typeof c === 'string') return c
  if (!c) return ''
  let s = ''
  for (const part of c) if (typeof part.text === 'string') s += part.text
  return s
}

/** The prompt as the seed sees it, and its token estimate (OpenAI's ~3 tokens of framing per message, plus 3). */
function chatPrompt(messages: readonly { role: string; content?: Content }[]): Prompt {
  let text = ''
  let tokens = 3
  for (const m of messages) {
    const c = contentText(m.content)
    text += `${m.role}: ${c}\n`
    tokens += 3 + estimateTokens(c.length)
  }
  return { text, tokens }
}

/** A single prompt, or the reason a batched one is refused. */
function textPrompt(p: string | string[] | number[] | number[][]): Prompt | string {
  if (typeof p === 'string') return { text: p, tokens: estimateTokens(p.length) }
  if (p.length === 0) return { text: '', tokens: 1 }
  if (p.length > 1 && typeof p[0] !== 'number') return 'The simulator serves one prompt per request; send the prompts separately.'
  const only = p.length === 1 && typeof p[0] !== 'number' ? p[0] : p
  if (typeof only === 'string') return { text: only, tokens: estimateTokens(only.length) }
  const ids = only as number[]
  return { text: ids.join(' '), tokens: Math.max(1, ids.length) }
}

function embeddingInputs(input: string | string[] | number[] | number[][]): { texts: string[]; tokens: number } {
  if (typeof input === 'string') return { texts: [input], tokens: estimateTokens(input.length) }
  if (typeof input[0] === 'number') return { texts: [(input as number[]).join(' ')], tokens: input.length }
  let tokens = 0
  const texts: string[] = []
  for (const item of input as (string | number[])[]) {
    if (typeof item === 'string') {
      texts.push(item)
      tokens += estimateTokens(item.length)
    } else {
      texts.push(item.join(' '))
      tokens += item.length
    }
  }
  return { texts, tokens }
}

type BodyResult = { ok: true; value: unknown } | { ok: false; error: ApiError }

/** Reads and parses a JSON body; a hang-up mid-body resolves as an error nobody will see. */
function readJson(req: IncomingMessage): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let tooBig = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) tooBig = true
      else chunks.push(chunk)
    })
    const broken = () => resolve({ ok: false, error: apiError(400, 'Request body could not be read.', 'invalid_body') })
    req.on('error', broken)
    req.on('close', broken) // after 'end' this is a no-op: the promise is settled
    req.on('end', () => {
      if (tooBig) return resolve({ ok: false, error: apiError(413, `Request body exceeds ${MAX_BODY_BYTES} bytes.`, 'body_too_large') })
      const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8')
      try {
        resolve({ ok: true, value: JSON.parse(text) as unknown })
      } catch {
        resolve({ ok: false, error: apiError(400, 'The request body is not valid JSON.', 'invalid_json') })
      }
    })
  })
}
