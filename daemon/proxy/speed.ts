/**
 * How fast a replica answers, as meshd sees it from outside the engine:
 * response bytes per millisecond of a request's time at the replica, over
 * its last completions (ratio of sums, so one long answer does not swing
 * it). Bytes stand for tokens (an SSE chunk per token, or the JSON of a
 * whole answer), and the time includes the wait for the first token, so
 * both a slow prefill and a slow decode lower it. Only its ratio between
 * members serving the same model matters: pick.ts weighs load by it.
 */

/** Completions the measure remembers. */
const WINDOW = 64
/** Below this many completions the measure is not reported (too few to tell). */
export const MIN_SAMPLES = 8

export class ServiceSpeed {
  private readonly bytes = new Float64Array(WINDOW)
  private readonly ms = new Float64Array(WINDOW)
  private count = 0
  private sumBytes = 0
  private sumMs = 0

  /** One finished request: the bytes it answered and how long it held its slot. */
  record (bytes: number, ms: number): void {
    if (bytes <= 0 || ms <= 0) return
    const i = this.count % WINDOW
    this.sumBytes += bytes - this.bytes[i]!
    this.sumMs += ms - this.ms[i]!
    this.bytes[i] = bytes
    this.ms[i] = ms
    this.count++
  }

  /** Bytes per millisecond, or undefined until MIN_SAMPLES requests have finished. */
  rate (): number | undefined {
    if (this.count < MIN_SAMPLES || this.sumMs <= 0) return undefined
    return this.sumBytes / this.sumMs
  }
}
