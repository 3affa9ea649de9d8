/**
 * The EC2 clients' retry strategy. The SDK's standard one retries every 5xx,
 * and EC2 refuses capacity with a 500 (InsufficientInstanceCapacity): each
 * refusal would cost three calls and seconds before the leader could move on
 * to the next zone. Here a capacity refusal is never retried (one refusal,
 * one call), throttling backs off exponentially from 1 s with full jitter
 * (EC2's RequestLimitExceeded is per account and region: hammering makes it
 * worse), and connection errors and EC2's own failures are retried briefly.
 *
 * The decision is a pure function (`retryDelay`); the class is the SDK's
 * RetryStrategyV2 shape around it. Retries resend the very same request, so a
 * CreateFleet keeps its ClientToken across them.
 */
import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types'
import { errorFacts, isCapacityCode, isQuotaCode, isThrottleCode } from './errors.ts'

export interface RetryPolicy {
  /** Attempts in all (first + retries) when throttled. @default 5 */
  throttleAttempts: number
  /** First throttling backoff; doubled per retry, capped at `throttleMaxMs`. @default 1000 */
  throttleBaseMs: number
  /** @default 20000 */
  throttleMaxMs: number
  /** Attempts in all for connection errors and EC2 5xx other than capacity. @default 3 */
  transientAttempts: number
  /** @default 100 */
  transientBaseMs: number
}

export const DEFAULT_RETRY: RetryPolicy = {
  throttleAttempts: 5,
  throttleBaseMs: 1000,
  throttleMaxMs: 20_000,
  transientAttempts: 3,
  transientBaseMs: 100
}

export type RetryKind = RetryErrorInfo['errorType']

/**
 * How long to wait before attempt `attempt + 1` after attempt `attempt`
 * (1-based) failed with `code` / `kind`; null: do not retry. `random` in
 * [0, 1) spreads the wait (full jitter: [base/2, base] keeps a floor).
 */
export function retryDelay (code: string, kind: RetryKind, attempt: number, policy: RetryPolicy, random: number): number | null {
  // Refusals are answers, not failures: retrying them only delays the move to the next offering.
  if (isCapacityCode(code) || isQuotaCode(code)) return null
  if (kind === 'THROTTLING' || isThrottleCode(code)) {
    if (attempt >= policy.throttleAttempts) return null
    const cap = Math.min(policy.throttleMaxMs, policy.throttleBaseMs * 2 ** (attempt - 1))
    return Math.round(cap / 2 + (cap / 2) * random)
  }
  if (kind === 'TRANSIENT' || kind === 'SERVER_ERROR') {
    if (attempt >= policy.transientAttempts) return null
    const cap = policy.transientBaseMs * 2 ** (attempt - 1)
    return Math.round(cap / 2 + (cap / 2) * random)
  }
  return null
}

class Token implements RetryToken {
  readonly count: number
  readonly delay: number
  constructor (count: number, delay: number) { this.count = count; this.delay = delay }
  getRetryCount (): number { return this.count }
  getRetryDelay (): number { return this.delay }
}

/** `retryDelay` as the SDK's RetryStrategyV2 (the SDK sleeps between attempts, under the call's abort signal). */
export class Ec2RetryStrategy implements RetryStrategyV2 {
  private readonly policy: RetryPolicy
  private readonly random: () => number
  /** Called on every retry decided (for logs and tests). */
  private readonly onRetry: ((code: string, attempt: number, delayMs: number) => void) | undefined

  constructor (policy: Partial<RetryPolicy> = {}, random: () => number = Math.random, onRetry?: (code: string, attempt: number, delayMs: number) => void) {
    this.policy = { ...DEFAULT_RETRY, ...policy }
    this.random = random
    this.onRetry = onRetry
  }

  async acquireInitialRetryToken (): Promise<RetryToken> {
    return new Token(0, 0)
  }

  async refreshRetryTokenForRetry (token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const attempt = token.getRetryCount() + 1
    const code = errorFacts(info.error).code
    const delay = retryDelay(code, info.errorType, attempt, this.policy, this.random())
    // Throwing tells the SDK to give up: it rethrows the request's own error.
    if (delay === null) throw new Error(`not retried: ${code}`)
    this.onRetry?.(code, attempt, delay)
    return new Token(attempt, delay)
  }

  recordSuccess (): void {}
}
