/**
 * The bounded queue at the entry node. When every candidate for a request
 * is saturated, the request waits here (not in one replica's queue), so it
 * goes to whichever member frees a slot first: late binding beats committing
 * early to one member's queue when members differ in speed.
 *
 * A waiter leaves the queue when `kick()` finds it a member, when its
 * deadline passes, or when its client goes away. The queue never holds more
 * than `max` waiters: beyond it the caller answers 429 at once.
 */
import { Ring } from './ring.ts'

interface Waiter<T> {
  place: () => T | null
  resolve: (placed: T | null) => void
  done: boolean
  timer: NodeJS.Timeout | undefined
}

export class EntryQueue<T> {
  private ring = new Ring<Waiter<T>>()
  private live = 0
  private readonly max: number

  constructor (max: number) {
    this.max = max
  }

  get length (): number {
    return this.live
  }

  /**
   * Waits until `place()` returns a placement (resolves with it), or the
   * deadline passes or the signal aborts (resolves null). Returns null at
   * once when the queue is full.
   */
  wait (place: () => T | null, timeoutMs: number, signal?: AbortSignal): Promise<T | null> | null {
    if (this.live >= this.max) return null
    return new Promise((resolve) => {
      const w: Waiter<T> = { place, resolve, done: false, timer: undefined }
      const settle = (v: T | null): void => {
        if (w.done) return
        w.done = true
        clearTimeout(w.timer)
        signal?.removeEventListener('abort', onAbort)
        this.live--
        resolve(v)
      }
      const onAbort = (): void => { settle(null) }
      w.resolve = settle
      w.timer = setTimeout(() => { settle(null) }, Math.max(0, timeoutMs))
      signal?.addEventListener('abort', onAbort, { once: true })
      this.live++
      this.ring.push(w)
    })
  }

  /** Tries to place waiters in arrival order; called when capacity may have freed up. */
  kick (): void {
    if (this.live === 0) return
    const next = new Ring<Waiter<T>>()
    let w: Waiter<T> | undefined
    while ((w = this.ring.shift()) !== undefined) {
      if (w.done) continue
      const placed = w.place()
      if (placed !== null) w.resolve(placed)
      else next.push(w)
    }
    this.ring = next
  }

  /** Resolves every waiter with null (shutting down). */
  clear (): void {
    let w: Waiter<T> | undefined
    while ((w = this.ring.shift()) !== undefined) if (!w.done) w.resolve(null)
  }
}
