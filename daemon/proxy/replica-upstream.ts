/**
 * The local replica as an upstream: requests go to the engine over HTTP/1.1
 * keep-alive (an undici Pool per engine URL), the response streams back
 * untouched. Every request reaching it was first admitted by this member's
 * SlotBroker (from this node's front door and from peers over the mesh
 * alike); its end gives the slot back to the broker at once, which hands it
 * to whoever in the mesh has waited longest. The broker's count, plus load
 * that bypasses meshd, is the load this member reports.
 */
import { Pool } from 'undici'
import type { LoadReport } from './load-view.ts'
import type { SlotBroker } from './slot-broker.ts'
import { RateMeter } from './rate.ts'
import { ServiceSpeed } from './speed.ts'
import { UpstreamError, type UpstreamRequest, type UpstreamResponse } from '../../mesh/infer/upstream.ts'
import { deadlines } from '../../mesh/infer/deadlines.ts'

export interface ReplicaUpstreamInit {
  selfId: string
  /** The engine's base URL, null while it is not running. */
  url: () => string | null
  now?: () => number
}

export interface ReplicaUpstreamComponents {
  /** Admits every request before request() is called; request() releases it. */
  broker: Pick<SlotBroker, 'release' | 'load'>
}

/** Connections kept to the engine; above its slots, so queued requests are already on the wire. */
const POOL_CONNECTIONS = 256

export class ReplicaUpstream {
  private readonly init: ReplicaUpstreamInit
  private readonly broker: ReplicaUpstreamComponents['broker']
  private readonly now: () => number
  private pool: Pool | undefined
  private poolOrigin = ''
  private inflightCount = 0
  private readonly done = new RateMeter(10)
  private readonly speed = new ServiceSpeed()
  /** When a request last started or ended at the replica. */
  lastActivityAt = 0

  constructor (init: ReplicaUpstreamInit, components: ReplicaUpstreamComponents) {
    this.init = init
    this.broker = components.broker
    this.now = init.now ?? Date.now
  }

  /** Requests meshd has at the replica now. */
  get inflight (): number {
    return this.inflightCount
  }


  /** Completed requests per second over the last 10 s. */
  qps (): number {
    return this.done.rate(this.now())
  }

  /**
   * Slots taken at the replica: meshd's requests, those held for offers,
   * and load that bypasses meshd. Never more than it really has: a slot
   * meshd freed counts as free at once.
   */
  load (): LoadReport {
    const b = this.broker.load()
    const taken = b.busy + b.reserved + b.bypass
    const rate = this.speed.rate()
    return { inflight: Math.min(taken, b.slots), queued: Math.max(0, taken - b.slots), slots: b.slots, at: Date.now(), ...(rate !== undefined ? { rate } : {}) }
  }

  /** Serves a request the broker admitted; the slot is released whatever happens. */
  async request (req: UpstreamRequest): Promise<UpstreamResponse> {
    const url = this.init.url()
    const remaining = req.deadline - Date.now()
    if (url === null || remaining <= 0) {
      this.broker.release(this.now())
      if (url === null) throw new UpstreamError('replica_unavailable', 'the local replica is not running', true)
      throw new UpstreamError('deadline_exceeded', 'the request deadline passed before it reached a replica', false)
    }
    const pool = this.poolFor(url)
    const controller = new AbortController()
    const deadline = deadlines.add(req.deadline, () => { controller.abort(new UpstreamError('deadline_exceeded', 'request deadline exceeded', false)) })
    this.inflightCount++
    this.lastActivityAt = Date.now()
    const startedAt = this.now()
    let finished = false
    const finish = (): void => {
      if (finished) return
      finished = true
      deadlines.clear(deadline)
      this.inflightCount--
      this.lastActivityAt = Date.now()
      this.done.mark(this.now())
      this.broker.release(this.now())
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
      body: measured(source, (bytes, complete) => {
        // Only whole, successful answers say how fast the replica is.
        if (complete && res.statusCode === 200) this.speed.record(bytes, this.now() - startedAt)
        finish()
      }),
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

/** The body as it streams through, counting its bytes; `ended` runs once, told whether it was read to the end. */
async function * measured (source: AsyncIterable<Uint8Array>, ended: (bytes: number, complete: boolean) => void): AsyncIterable<Uint8Array> {
  let bytes = 0
  let complete = false
  try {
    for await (const chunk of source) {
      bytes += chunk.byteLength
      yield chunk
    }
    complete = true
  } finally {
    ended(bytes, complete)
  }
}
