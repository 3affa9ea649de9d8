/**
 * Timing: the configured intervals and the lease length derived from them.
 * The derivation's proof is in lease.ts; this module is only the arithmetic,
 * kept apart so it can be tested with a table.
 */
import {
  DEFAULT_ELECTION_TIMEOUT_MAX_MS, DEFAULT_ELECTION_TIMEOUT_MIN_MS, DEFAULT_HEARTBEAT_MS,
  DEFAULT_LEASE_SAFETY_MARGIN_MS, DEFAULT_MAX_DRIFT_RATE
} from './constants.ts'

export interface Timing {
  heartbeatMs: number
  electionTimeoutMinMs: number
  electionTimeoutMaxMs: number
  /** ρ: local clocks run at a rate within [1−ρ, 1+ρ] of real time. */
  maxDriftRate: number
  /** Taken off the lease after the drift factor; defaults to 50 ms. */
  leaseSafetyMarginMs?: number
}

export const DEFAULT_TIMING: Readonly<Required<Timing>> = Object.freeze({
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  electionTimeoutMinMs: DEFAULT_ELECTION_TIMEOUT_MIN_MS,
  electionTimeoutMaxMs: DEFAULT_ELECTION_TIMEOUT_MAX_MS,
  maxDriftRate: DEFAULT_MAX_DRIFT_RATE,
  leaseSafetyMarginMs: DEFAULT_LEASE_SAFETY_MARGIN_MS
})

export class TimingError extends Error {
  override name = 'TimingError'
}

/**
 * The longest lease that stays inside every follower's promise, measured on
 * the leader's own clock: electionTimeoutMin·(1−ρ)/(1+ρ), less the margin.
 * (A promise of E local ms on a clock at most 1+ρ fast lasts ≥ E/(1+ρ) real
 * ms; a lease of L local ms on a clock at least 1−ρ slow lasts ≤ L/(1−ρ) real
 * ms; L/(1−ρ) ≤ E/(1+ρ) ⇔ L ≤ E(1−ρ)/(1+ρ).) Floored to whole ms, which
 * only shortens it.
 */
export function leaseMs (t: Timing): number {
  const margin = t.leaseSafetyMarginMs ?? DEFAULT_LEASE_SAFETY_MARGIN_MS
  return Math.floor(t.electionTimeoutMinMs * (1 - t.maxDriftRate) / (1 + t.maxDriftRate) - margin)
}

/**
 * How long after hearing from a leader (on its own clock) a node refuses to
 * grant any vote, including to itself. This is the follower side of the
 * lease, so it is exactly the electionTimeoutMin the lease was derived from.
 */
export function promiseMs (t: Timing): number {
  return t.electionTimeoutMinMs
}

/** A random election timeout in [min, max), from an injected random() in [0, 1). */
export function electionTimeout (t: Timing, random: () => number): number {
  const r = random()
  const u = r >= 0 && r < 1 ? r : 0 // a broken source must not produce a timeout below min
  return t.electionTimeoutMinMs + u * (t.electionTimeoutMaxMs - t.electionTimeoutMinMs)
}

/**
 * Rejects timings under which the design does not hold: the lease must be
 * positive and longer than a heartbeat (else the leader's right to act would
 * lapse between rounds on a perfect network), and the timeouts ordered.
 */
export function validateTiming (t: Timing): Required<Timing> {
  const full: Required<Timing> = { ...t, leaseSafetyMarginMs: t.leaseSafetyMarginMs ?? DEFAULT_LEASE_SAFETY_MARGIN_MS }
  const finite = Object.entries(full).every(([, v]) => typeof v === 'number' && Number.isFinite(v))
  if (!finite) throw new TimingError('timing values must be finite numbers')
  if (full.heartbeatMs <= 0) throw new TimingError('heartbeatMs must be > 0')
  if (full.electionTimeoutMinMs <= 0) throw new TimingError('electionTimeoutMinMs must be > 0')
  if (full.electionTimeoutMaxMs <= full.electionTimeoutMinMs) throw new TimingError('electionTimeoutMaxMs must be > electionTimeoutMinMs')
  if (!(full.maxDriftRate >= 0 && full.maxDriftRate < 1)) throw new TimingError('maxDriftRate must be in [0, 1)')
  if (full.leaseSafetyMarginMs < 0) throw new TimingError('leaseSafetyMarginMs must be >= 0')
  const lease = leaseMs(full)
  if (lease <= full.heartbeatMs) throw new TimingError(`lease ${lease} ms must exceed heartbeatMs ${full.heartbeatMs} ms (lower heartbeat or raise electionTimeoutMinMs)`)
  return full
}
