/**
 * Per-target dial back-off: 0.5 s doubling to a cap, with jitter so that a
 * whole mesh that lost one node does not redial it in lock-step. Pure; the
 * clock and randomness are passed in.
 */
export interface BackoffState { failures: number, nextAt: number }

export const BACKOFF_BASE_MS = 500
export const BACKOFF_MAX_MS = 30_000

export function nextAttempt (failures: number, now: number, random: () => number, baseMs = BACKOFF_BASE_MS, maxMs = BACKOFF_MAX_MS): number {
  const delay = Math.min(maxMs, baseMs * 2 ** Math.min(failures, 16))
  return now + delay * (0.75 + 0.5 * random())
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
