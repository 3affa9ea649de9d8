/**
 * A token bucket on an explicit clock: `capacity` tokens at most, refilled at
 * `ratePerS`. Over any window of T seconds no more than capacity + rate·T
 * tokens are taken. Pure: the caller passes `now`.
 */
export class TokenBucket {
  readonly capacity: number
  readonly ratePerS: number
  private tokens: number
  private at: number

  constructor (capacity: number, ratePerS: number, now: number) {
    this.capacity = capacity
    this.ratePerS = ratePerS
    this.tokens = capacity
    this.at = now
  }

  /** Whether `n` tokens could be taken now. */
  has (n: number, now: number): boolean {
    this.refill(now)
    return this.tokens >= n
  }

  /** Takes `n` tokens if there are that many; false (and takes none) otherwise. */
  take (n: number, now: number): boolean {
    if (!this.has(n, now)) return false
    this.tokens -= n
    return true
  }

  private refill (now: number): void {
    // A clock that goes back refills nothing (and does not drain either).
    if (now > this.at) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.at) / 1000 * this.ratePerS)
      this.at = now
    }
  }
}
