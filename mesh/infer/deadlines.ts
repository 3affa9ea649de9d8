/**
 * One coarse timer for every request's deadline, instead of a timer armed
 * and cleared per request (undici's fast timers do the same): deadlines are
 * minutes long, so a quarter-second of slack costs nothing, and a request
 * that ends normally only leaves a set. The interval runs only while some
 * deadline is pending, and never keeps the process alive.
 */
export interface Deadline { at: number, expire: () => void }

export class Deadlines {
  private readonly pending = new Set<Deadline>()
  private timer: NodeJS.Timeout | undefined
  private readonly tickMs: number

  constructor (tickMs = 250) {
    this.tickMs = tickMs
  }

  /** Calls `expire` once, at `at` (epoch ms) or up to one tick after, unless cleared first. */
  add (at: number, expire: () => void): Deadline {
    const d = { at, expire }
    this.pending.add(d)
    if (this.timer === undefined) {
      this.timer = setInterval(() => { this.tick() }, this.tickMs)
      this.timer.unref()
    }
    return d
  }

  clear (d: Deadline): void {
    this.pending.delete(d)
  }

  get size (): number {
    return this.pending.size
  }

  private tick (): void {
    const now = Date.now()
    for (const d of this.pending) {
      if (d.at > now) continue
      this.pending.delete(d)
      d.expire()
    }
    if (this.pending.size === 0) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }
}

/** The process's one set of request deadlines. */
export const deadlines = new Deadlines()
