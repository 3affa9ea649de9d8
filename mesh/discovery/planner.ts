/**
 * What to dial next: the book's due targets, in order, as far as the dial
 * budget and the free dial slots allow. Pure (the clock is passed in); the
 * discovery service runs what it returns and reports each outcome back. This
 * is the one place that decides dials, so the bound "never more than
 * DIAL_BURST + DIAL_RATE_PER_S·T addresses dialled in T seconds, whatever
 * peers send" is a property of this class (test/mesh/discovery-book.test.ts).
 */
import { AddressBook, type Target } from './book.ts'
import { TokenBucket } from './token-bucket.ts'
import * as K from './constants.ts'

export interface PlannerLimits {
  ratePerS: number
  burst: number
  hintRatePerS: number
  hintBurst: number
  maxParallel: number
}

export const DEFAULT_PLANNER_LIMITS: PlannerLimits = {
  ratePerS: K.DIAL_RATE_PER_S,
  burst: K.DIAL_BURST,
  hintRatePerS: K.HINT_DIAL_RATE_PER_S,
  hintBurst: K.HINT_DIAL_BURST,
  maxParallel: K.MAX_PARALLEL_DIALS
}

/** What one dial costs from the budget: the addresses it may try (libp2p tries them one by one). */
export function dialCost (t: Target): number {
  return Math.max(1, t.addrs.length)
}

export class DialPlanner {
  readonly book: AddressBook
  readonly limits: PlannerLimits
  private readonly all: TokenBucket
  private readonly hints: TokenBucket
  private readonly inflight = new Set<string>()

  constructor (book: AddressBook, now: number, limits: Partial<PlannerLimits> = {}) {
    this.book = book
    this.limits = { ...DEFAULT_PLANNER_LIMITS, ...limits }
    this.all = new TokenBucket(this.limits.burst, this.limits.ratePerS, now)
    this.hints = new TokenBucket(this.limits.hintBurst, this.limits.hintRatePerS, now)
  }

  get inflightCount (): number {
    return this.inflight.size
  }

  /**
   * The dials to start now, each already marked in flight (not returned
   * again until done() or `timeoutMs`). Stops at the first target the shared
   * budget cannot pay for, so a cheap low-priority target never overtakes an
   * expensive high-priority one.
   */
  next (now: number, timeoutMs: number, skip: (t: Target) => boolean): Target[] {
    const out: Target[] = []
    for (const t of this.book.due(now, (t) => this.inflight.has(t.key) || skip(t))) {
      if (this.inflight.size >= this.limits.maxParallel) break
      const cost = dialCost(t)
      if (t.source === 'hint' && !this.hints.has(cost, now)) continue
      if (!this.all.take(cost, now)) break
      if (t.source === 'hint') this.hints.take(cost, now)
      this.inflight.add(t.key)
      this.book.attempting(t.key, now, timeoutMs)
      out.push(t)
    }
    return out
  }

  /** A dial ended. Returns the target when the book gave it up (its addresses can be dropped elsewhere too). */
  done (key: string, ok: boolean, now: number): Target | null {
    this.inflight.delete(key)
    if (ok) {
      this.book.succeeded(key)
      return null
    }
    return this.book.failed(key, now)
  }
}
