/**
 * The local replica as an upstream: requests go to the engine over HTTP/1.1
 * keep-alive (an undici Pool per engine URL), the response streams back
 * untouched. Counts the requests meshd has at the replica, from this node's
 * front door and from peers over the mesh alike: that count, combined with
 * the engine's own metrics, is the load this member reports.
 */
import { Pool } from 'undici'
import type { LoadReport } from './load-view.ts'
import { RateMeter } from './rate.ts'
import { UpstreamError, onSettled, type UpstreamRequest, type UpstreamResponse } from './upstream.ts'

export interface EngineLoad { running: number, waiting: number, at: number }

export interface LocalReplicaInit {
  selfId: string
  slots: number
  /** The engine's base URL, null while it is not running. */
  url: () => string | null
  /** The engine's own counts (from its /metrics), null if it publishes none. */
  engine: () => EngineLoad | null
  now?: () => number
}

/** Engine metrics older than this are not trusted for load. */
const ENGINE_FRESH_MS = 3000
/** Connections kept to the engine; above its slots, so queued requests are already on the wire. */
const POOL_CONNECTIONS = 256

export class LocalReplica {
  private readonly init: LocalReplicaInit
  private readonly now: () => number
  private pool: Pool | undefined
  private poolOrigin = ''
  private inflightCount = 0
  private readonly done = new RateMeter(10)
  private readonly listeners = new Set<() => void>()
  /** When a request last started or ended at the replica. */
  lastActivityAt = 0

  constructor (init: LocalReplicaInit) {
    this.init = init
    this.now = init.now ?? Date.now
  }

  /** Requests meshd has at the replica now. */
  get inflight (): number {
    return this.inflightCount
  }

  /** Called whenever a request at the replica finishes (capacity may have freed up). */
  onFinish (fn: () => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  /** Completed requests per second over the last 10 s. */
  qps (): number {
    return this.done.rate(this.now())
  }

  /** In flight and queued at the replica: meshd's own count or the engine's, whichever is higher. */
  load (): LoadReport {
    const slots = this.init.slots
    let total = this.inflightCount
    const e = this.init.engine()
    if (e !== null && this.now() - e.at < ENGINE_FRESH_MS) total = Math.max(total, e.running + e.waiting)
    return { inflight: Math.min(total, slots), queued: Math.max(0, total - slots), slots, at: Date.now() }
  }

  async request (req: UpstreamRequest): Promise<UpstreamResponse> {
    const url = this.init.url()
    if (url === null) throw new UpstreamError('replica_unavailable', 'the local replica is not running', true)
    const pool = this.poolFor(url)
    const remaining = req.deadline - Date.now()
    if (remaining <= 0) throw new UpstreamError('deadline_exceeded', 'the request deadline passed before it reached a replica', false)
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort(new UpstreamError('deadline_exceeded', 'request deadline exceeded', false)) }, remaining)
    this.inflightCount++
    this.lastActivityAt = Date.now()
    let finished = false
    const finish = (): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      this.inflightCount--
      this.lastActivityAt = Date.now()
      this.done.mark(this.now())
      for (const fn of this.listeners) fn()
    }
    let res: Awaited<ReturnType<Pool['request']>>
    try {
      res = await pool.request({
        method: req.method,
        path: req.path,
        headers: Object.fromEntries(req.headers),
        body: req.method === 'GET' ? null : req.body,
        signal: controller.signal,
        headersTimeout: remaining,
        bodyTimeout: 0
      })
    } catch (err) {
      finish()
      if (err instanceof UpstreamError) throw err
      const code = (err as { code?: string }).code ?? ''
      // Refused or reset before any answer: nothing ran there; another member may try.
      throw new UpstreamError('replica_unreachable', `local replica: ${(err as Error).message}${code !== '' ? ` (${code})` : ''}`, true)
    }
    const headers: Array<[string, string]> = []
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue
      if (Array.isArray(v)) for (const x of v) headers.push([k, x])
      else headers.push([k, v])
    }
    const source = res.body
    return {
      status: res.statusCode,
      headers,
      servedBy: this.init.selfId,
      load: this.load(),
      body: onSettled(source, finish),
      abort: (reason?: Error) => {
        controller.abort(reason ?? new Error('client gone'))
        source.destroy()
        finish()
      }
    }
  }

  async close (): Promise<void> {
    const p = this.pool
    this.pool = undefined
    await p?.destroy().catch(() => {})
  }

  private poolFor (url: string): Pool {
    const origin = new URL(url).origin
    if (this.pool === undefined || this.poolOrigin !== origin) {
      void this.pool?.close().catch(() => {})
      // pipelining 1: one request per connection at a time (streams must not queue behind each other).
      this.pool = new Pool(origin, { connections: POOL_CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000 })
      this.poolOrigin = origin
    }
    return this.pool
  }
}
