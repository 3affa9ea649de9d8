/**
 * Per-target dial back-off: 0.5 s doubling to a cap, with jitter so that a
 * whole mesh that lost one node does not redial it in lock-step (the curve
 * is mesh/backoff.ts). Pure; the clock and randomness are passed in.
 */
import { backoffDelay } from '../backoff.ts'

export interface BackoffState { failures: number, nextAt: number }

export const BACKOFF_BASE_MS = 500
export const BACKOFF_MAX_MS = 30_000

/** When to try again after `failures` + 1 failures in a row (0: the first failure). */
export function nextAttempt (failures: number, now: number, random: () => number, baseMs = BACKOFF_BASE_MS, maxMs = BACKOFF_MAX_MS): number {
  return now + backoffDelay({ initialMs: baseMs, maxMs, jitter: 0.25 }, failures + 1, random)
}

export class Backoff {
  private readonly state = new Map<string, BackoffState>()
  private readonly random: () => number

  constructor (random: () => number = Math.random) {
    this.random = random
  }

  due (key: string, now: number): boolean {
    const s = this.state.get(key)
    return s === undefined || now >= s.nextAt
  }

  failed (key: string, now: number): void {
    const failures = (this.state.get(key)?.failures ?? 0) + 1
    this.state.set(key, { failures, nextAt: nextAttempt(failures - 1, now, this.random) })
  }

  /** Marks an attempt in flight so it is not started twice. */
  attempting (key: string, now: number, timeoutMs: number): void {
    const failures = this.state.get(key)?.failures ?? 0
    this.state.set(key, { failures, nextAt: now + timeoutMs })
  }

  succeeded (key: string): void {
    this.state.delete(key)
  }

  forget (key: string): void {
    this.state.delete(key)
  }
}
