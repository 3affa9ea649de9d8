/**
 * Events per second over a sliding window, in one-second buckets: the qps a
 * member reports in its heartbeat (SkyServe's autoscaler input).
 */
export class RateMeter {
  private readonly buckets: Float64Array
  private readonly windowS: number
  private lastSecond = 0

  constructor (windowSeconds = 10) {
    this.windowS = windowSeconds
    this.buckets = new Float64Array(windowSeconds)
  }

  mark (now: number, n = 1): void {
    this.advance(now)
    this.buckets[Math.floor(now / 1000) % this.windowS]! += n
  }

  /** Average rate over the window ending now (the current second counts in part). */
  rate (now: number): number {
    this.advance(now)
    let sum = 0
    for (const b of this.buckets) sum += b
    return sum / this.windowS
  }

  private advance (now: number): void {
    const s = Math.floor(now / 1000)
    if (this.lastSecond === 0) { this.lastSecond = s; return }
    const gap = Math.min(this.windowS, s - this.lastSecond)
    for (let i = 1; i <= gap; i++) this.buckets[(this.lastSecond + i) % this.windowS] = 0
    if (s > this.lastSecond) this.lastSecond = s
  }
}
