/**
 * One run per key at a time: a call with a key already running joins that
 * run instead of starting another. A provider's create() is idempotent by
 * key, but two concurrent creates of one key inside one provider object
 * would otherwise both find nothing and both launch.
 */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>()

  run (key: string, fn: () => Promise<T>): Promise<T> {
    const inflight = this.running.get(key)
    if (inflight !== undefined) return inflight
    const p = fn().finally(() => { this.running.delete(key) })
    this.running.set(key, p)
    return p
  }
}
