/**
 * A value read from EC2 and kept for a while (the zones of a region, its spot
 * prices): read again once older than `ttlMs`; a failed read keeps the last
 * value and says so (`error`), and is not tried again for `retryMs` so a
 * broken endpoint is not asked on every offerings() call. Concurrent gets
 * share one read.
 */
export interface Reading<T> {
  /** The last value read, or null when none was ever read. */
  value: T | null
  /** When `value` was read (the clock given), or null. */
  at: number | null
  /** Why the last read failed, when it did (the value is then older than ttl, or null). */
  error: string | null
}

export class Refreshing<T> {
  private readonly load: () => Promise<T>
  private readonly ttlMs: number
  private readonly retryMs: number
  private readonly now: () => number
  private value: T | null = null
  private at: number | null = null
  private error: string | null = null
  private failedAt: number | null = null
  private inflight: Promise<void> | null = null

  constructor (load: () => Promise<T>, ttlMs: number, now: () => number, retryMs = Math.min(ttlMs, 30_000)) {
    this.load = load
    this.ttlMs = ttlMs
    this.retryMs = retryMs
    this.now = now
  }

  async get (): Promise<Reading<T>> {
    if (this.due()) {
      this.inflight ??= this.read().finally(() => { this.inflight = null })
      await this.inflight
    }
    return { value: this.value, at: this.at, error: this.error }
  }

  /** The last value read, without reading (null when none yet). */
  peek (): T | null {
    return this.value
  }

  private due (): boolean {
    const now = this.now()
    if (this.failedAt !== null && now - this.failedAt < this.retryMs) return false
    return this.at === null || now - this.at >= this.ttlMs
  }

  private async read (): Promise<void> {
    try {
      const v = await this.load()
      this.value = v
      this.at = this.now()
      this.error = null
      this.failedAt = null
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e)
      this.failedAt = this.now()
    }
  }
}
