/**
 * Load on the local engine that did not come through meshd: clients that
 * talk to the engine directly. meshd's own count of its requests at the
 * replica is exact and immediate; the engine's metrics are scraped about
 * once a second and include meshd's requests. So the engine's count is used
 * only for what exceeds meshd's, compared with the most meshd had at the
 * replica at any moment since the previous scrape was read (the scrape was
 * taken at one of those moments). Erring that way, a request meshd has just
 * finished, still in a scrape taken a moment before, cannot hold a freed slot
 * for a whole scrape period (the bug that left slots idle while requests
 * waited); load that really bypasses meshd is still seen within one scrape.
 */

/** Engine metrics older than this are not trusted. */
export const ENGINE_FRESH_MS = 3000

export interface EngineLoad { running: number, waiting: number, at: number }

export class BypassEstimate {
  private lastAt = -1
  private value = 0

  /**
   * Feeds the engine's latest scrape (null: the engine publishes none).
   * `peakBusy` returns the most requests meshd had at the replica since it
   * was last called (and starts a new window); it is called once per new
   * scrape. Returns the load to add to meshd's own.
   */
  update (engine: EngineLoad | null, peakBusy: () => number, now: number): number {
    if (engine === null || now - engine.at >= ENGINE_FRESH_MS) {
      this.lastAt = -1
      this.value = 0
      return 0
    }
    if (engine.at !== this.lastAt) {
      this.lastAt = engine.at
      this.value = Math.max(0, engine.running + engine.waiting - peakBusy())
    }
    return this.value
  }
}
