/**
 * Load on the local engine that did not come through meshd: clients that
 * talk to the engine directly. meshd's own count of its requests at the
 * replica is exact and immediate; the engine's metrics are scraped about
 * once a second and include meshd's requests. So the engine's count is used
 * only for the difference, and only when two scrapes in a row agree: a
 * request meshd has just finished is still in a scrape taken a moment
 * before, and would otherwise hold a freed slot for a whole scrape period
 * (the bug that left slots idle while requests waited).
 */

/** Engine metrics older than this are not trusted. */
export const ENGINE_FRESH_MS = 3000

export interface EngineLoad { running: number, waiting: number, at: number }

export class BypassEstimate {
  private lastAt = -1
  private previous = 0
  private current = 0

  /**
   * Feeds the engine's latest scrape (null: the engine publishes none) and
   * meshd's own count now; returns the load to add to meshd's count.
   */
  update (engine: EngineLoad | null, meshdBusy: number, now: number): number {
    if (engine === null || now - engine.at >= ENGINE_FRESH_MS) {
      this.previous = 0
      this.current = 0
      this.lastAt = -1
      return 0
    }
    if (engine.at !== this.lastAt) {
      this.lastAt = engine.at
      this.previous = this.current
      this.current = Math.max(0, engine.running + engine.waiting - meshdBusy)
    }
    return Math.min(this.previous, this.current)
  }
}
