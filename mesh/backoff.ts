/**
 * The one exponential back-off of meshd: the delay before attempt n+1 after
 * n failures in a row, doubling (by `factor`) from `initialMs` to `maxMs`,
 * optionally spread by ±jitter so that many nodes that lost the same peer do
 * not retry in lock-step. Used for dialling peers (mesh/discovery) and for
 * restarting a crashed engine (daemon/replica). Pure: randomness is passed in.
 */
export interface BackoffCurve {
  initialMs: number
  maxMs: number
  /** @default 2 */
  factor?: number
  /** Spread of each delay, as a fraction either way (0.25: ×0.75 to ×1.25). @default 0 */
  jitter?: number
}

/** The delay after `failures` failures in a row (1 → initialMs). */
export function backoffDelay (curve: BackoffCurve, failures: number, random: () => number = Math.random): number {
  const factor = curve.factor ?? 2
  // Exponent capped so that factor ** n never overflows to Infinity * 0 = NaN.
  const exp = Math.min(Math.max(0, failures - 1), 64)
  const delay = Math.min(curve.maxMs, curve.initialMs * factor ** exp)
  const jitter = curve.jitter ?? 0
  return jitter === 0 ? delay : delay * (1 - jitter + 2 * jitter * random())
}
