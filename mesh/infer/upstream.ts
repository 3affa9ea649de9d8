/**
 * What the front door asks of a member — the local replica or a peer over
 * the mesh — and what it gets back: a response head, then a body that
 * streams as the replica produces it. Both kinds implement the same shape,
 * so retry and streaming logic is written once.
 */
import type { LoadReport } from './schemas.ts'
import { Ring } from './ring.ts'

export interface UpstreamRequest {
  id: string
  method: 'GET' | 'POST'
  path: string
  /** Request headers to pass on (hop-by-hop and credentials already removed). */
  headers: Array<[string, string]>
  body: Uint8Array
  model: string
  /** Absolute deadline (epoch ms); the serving member stops at it too. */
  deadline: number
  /** A slot offer from the chosen member that this request takes (see slot-broker.ts). */
  offer?: string
}

export interface UpstreamResponse {
  status: number
  headers: Array<[string, string]>
  servedBy: string
  /** The serving member's load, piggybacked on its answer. */
  load?: LoadReport
  body: AsyncIterable<Uint8Array>
  /** Stops the request at the serving member (client gone): frees its slot. */
  abort: (reason?: Error) => void
}

/**
 * A failure before any response byte. `retryable` is true when the request
 * cannot have been processed (dial refused, replica not ready, stream reset
 * before the head), so another member may be tried.
 */
export class UpstreamError extends Error {
  readonly retryable: boolean
  readonly code: string
  /** The member's load when it refused, if it said (a full member does). */
  readonly load: LoadReport | undefined
  constructor (code: string, message: string, retryable: boolean, load?: LoadReport) {
    super(message)
    this.name = 'UpstreamError'
    this.code = code
    this.retryable = retryable
    this.load = load
  }
}

/** The code of a refusal by a member whose slots are all taken: nothing ran, try another or wait for an offer. */
export const MEMBER_BUSY = 'member_busy'

/**
 * A single-consumer async queue of body chunks, fed by push callbacks (a
 * libp2p stream's message events). `onPressure` tells the producer to pause
 * while more than `highWater` chunks wait, and to resume when drained.
 */
export class ChunkChannel implements AsyncIterable<Uint8Array> {
  private queue = new Ring<Uint8Array>()
  private waiting: ((r: IteratorResult<Uint8Array>) => void) | null = null
  private failWaiting: ((e: Error) => void) | null = null
  private ended = false
  private error: Error | null = null
  private paused = false
  private readonly highWater: number
  private readonly onPressure: (pause: boolean) => void

  constructor (onPressure: (pause: boolean) => void = () => {}, highWater = 64) {
    this.onPressure = onPressure
    this.highWater = highWater
  }

  push (chunk: Uint8Array): void {
    if (this.ended) return
    if (this.waiting !== null) {
      const w = this.waiting
      this.waiting = null
      this.failWaiting = null
      w({ value: chunk, done: false })
      return
    }
    this.queue.push(chunk)
    if (!this.paused && this.queue.length > this.highWater) {
      this.paused = true
      this.onPressure(true)
    }
  }

  end (): void {
    this.ended = true
    if (this.waiting !== null && this.queue.length === 0) {
      const w = this.waiting
      this.waiting = null
      w({ value: undefined, done: true })
    }
  }

  fail (err: Error): void {
    if (this.ended) return
    this.ended = true
    this.error = err
    if (this.failWaiting !== null) {
      const f = this.failWaiting
      this.waiting = null
      this.failWaiting = null
      f(err)
    }
  }

  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        const chunk = this.queue.shift()
        if (chunk !== undefined) {
          if (this.paused && this.queue.length <= this.highWater / 2) {
            this.paused = false
            this.onPressure(false)
          }
          return Promise.resolve({ value: chunk, done: false })
        }
        if (this.error !== null) return Promise.reject(this.error)
        if (this.ended) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve, reject) => { this.waiting = resolve; this.failWaiting = reject })
      },
      return: () => {
        this.ended = true
        this.queue = new Ring<Uint8Array>()
        return Promise.resolve({ value: undefined, done: true })
      }
    }
  }
}

/** The body as it streams through, calling `settled` once when it ends, fails or is abandoned (the consumer stopped reading). */
export async function * onSettled (source: AsyncIterable<Uint8Array>, settled: () => void): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of source) yield chunk
  } finally {
    settled()
  }
}
