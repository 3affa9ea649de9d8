/**
 * When to start the engine again after it exited on its own (or was killed by
 * the supervisor for failing its probes), on meshd's one back-off curve
 * (mesh/backoff.ts). Pure; the supervisor keeps the state.
 *
 * | consecutive failures | delay before the next start        |
 * | -------------------- | ---------------------------------- |
 * | 1                    | initialMs (1 s)                    |
 * | 2, 3, 4 …            | doubles each time: 2 s, 4 s, 8 s … |
 * | any                  | at most maxMs (60 s)               |
 *
 * The count goes back to zero once a run has been ready without a break for
 * resetAfterReadyMs (60 s): an engine that served for a minute and then
 * crashed is restarted after 1 s, one that crashes while loading its model
 * backs off to a restart a minute.
 */

import { backoffDelay } from '../../mesh/backoff.ts'

export interface BackoffPolicy {
  /** @default 1000 */
  initialMs: number
  /** @default 60_000 */
  maxMs: number
  /** @default 2 */
  factor: number
  /** A run ready this long without a break resets the count. @default 60_000 */
  resetAfterReadyMs: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 1000,
  maxMs: 60_000,
  factor: 2,
  resetAfterReadyMs: 60_000
}

export interface BackoffState {
  /** Runs in a row that ended in a failure without having been ready long enough to reset. */
  failures: number
}

export const INITIAL_BACKOFF: BackoffState = { failures: 0 }

/** The delay before the next start after the `failures`-th failure in a row (1-based). */
export function restartDelayMs (policy: BackoffPolicy, failures: number): number {
  return backoffDelay(policy, failures)
}

/**
 * A run ended in a failure. `longestReadyMs` is the longest stretch the run
 * was ready without a break (0 if it never was).
 */
export function afterFailure (policy: BackoffPolicy, state: BackoffState, longestReadyMs: number): { state: BackoffState, delayMs: number } {
  const failures = longestReadyMs >= policy.resetAfterReadyMs ? 1 : state.failures + 1
  return { state: { failures }, delayMs: restartDelayMs(policy, failures) }
}
