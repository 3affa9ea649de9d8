/**
 * The bounded queue at the entry node, one FIFO per model. A request waits
 * here when no member has a slot for it, and leaves when a member offers
 * one (late binding: it goes to whichever member frees a slot first, not to
 * the queue of a member chosen early), when its deadline passes, or when
 * its client goes away. The queue never holds more than `max` waiters:
 * beyond it the caller answers 429 at once.
 *
 * What members need to rank this node's demand against other entry nodes'
 * (how many wait, how long the oldest have) comes from heads(); every change
 * to a model's waiters is reported through `onChange`, so the router can
 * tell the members.
 */

interface Waiter<T> {
  /** Tells a new oldest waiter from an older one (Heads.oldest). */
  id: number
  model: string
  since: number
  /** Members this request must not go to (they failed it). */
  exclude: ReadonlySet<string> | undefined
  settle: (placed: T | null) => void
}

export interface Heads {
  waiting: number
  /** Ages of the oldest waiters, ms, oldest first. */
  headsMs: number[]
  /** An identity of the oldest waiter: tells a new head from an older one. */
  oldest: number
}

export class EntryQueue<T> {
  private readonly byModel = new Map<string, Set<Waiter<T>>>()
  private live = 0
  private readonly max: number
  private readonly onChange: (model: string) => void
  private readonly now: () => number
  private nextId = 0

  constructor (max: number, onChange: (model: string) => void = () => {}, now: () => number = Date.now) {
    this.max = max
    this.onChange = onChange
    this.now = now
  }

  get length (): number {
    return this.live
  }

  /** Requests waiting for `model`. */
  waiting (model: string): number {
    return this.byModel.get(model)?.size ?? 0
  }

  /** Models with at least one waiter. */
  models (): string[] {
    return [...this.byModel.keys()]
  }

  /**
   * Waits until take() places the request (resolves with the placement), or
   * the deadline passes or the signal aborts (resolves null). Returns null at
   * once when the queue is full.
   */
  wait (model: string, timeoutMs: number, signal?: AbortSignal, exclude?: ReadonlySet<string>): Promise<T | null> | null {
    if (this.live >= this.max) return null
    return new Promise((resolve) => {
      let done = false
      let timer: NodeJS.Timeout | undefined
      const w: Waiter<T> = {
        id: ++this.nextId,
        model,
        since: this.now(),
        exclude,
        settle: (v) => {
          if (done) return
          done = true
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          this.remove(w)
          resolve(v)
        }
      }
      const onAbort = (): void => { w.settle(null) }
      timer = setTimeout(() => { w.settle(null) }, Math.max(0, timeoutMs))
      signal?.addEventListener('abort', onAbort, { once: true })
      let set = this.byModel.get(model)
      if (set === undefined) { set = new Set(); this.byModel.set(model, set) }
      set.add(w)
      this.live++
      this.onChange(model)
    })
  }

  /**
   * Gives the oldest waiter for `model` that may go to `member` the
   * placement `place()` makes (null from place(): nobody is placed). False
   * when no waiter was placed.
   */
  take (model: string, member: string, place: () => T | null): boolean {
    const set = this.byModel.get(model)
    if (set === undefined) return false
    for (const w of set) {
      if (w.exclude?.has(member) === true) continue
      const placed = place()
      if (placed === null) return false
      w.settle(placed)
      return true
    }
    return false
  }

  heads (model: string, max: number): Heads {
    const set = this.byModel.get(model)
    const now = this.now()
    const headsMs: number[] = []
    let oldest = 0
    if (set !== undefined) {
      for (const w of set) {
        if (headsMs.length === 0) oldest = w.id
        headsMs.push(now - w.since)
        if (headsMs.length >= max) break
      }
    }
    return { waiting: set?.size ?? 0, headsMs, oldest }
  }

  /** Resolves every waiter with null (shutting down). */
  clear (): void {
    for (const set of [...this.byModel.values()]) for (const w of [...set]) w.settle(null)
  }

  private remove (w: Waiter<T>): void {
    const set = this.byModel.get(w.model)
    if (set === undefined || !set.delete(w)) return
    this.live--
    if (set.size === 0) this.byModel.delete(w.model)
    this.onChange(w.model)
  }
}
