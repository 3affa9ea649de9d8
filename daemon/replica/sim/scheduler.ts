// The simulated engine's timing model: `slots` requests decode at once, the
// rest wait in a FIFO queue, and each running request emits its first token
// `ttft` after it got its slot, then one token every 1/tokensPerSecond.
//
// One timer serves every running request. Requests sit in a min-heap keyed by
// the time their next token is due; when the timer fires, every request whose
// token is due is advanced and the timer is re-armed for the new earliest due
// time. A request's next due time is computed from its previous *due* time,
// never from when the timer actually fired, so timer lateness and event-loop
// stalls do not accumulate: a late request emits all tokens that are due at
// once (one write) and is back on schedule.
//
// Optional per-slot slowdown (`decodeSlowdown`): real engines batch all running
// requests into one decode step, so each request decodes slower as the batch
// grows. With slowdown s and r running requests, a request's inter-token time is
// (1 + s*(r-1)) / tokensPerSecond, evaluated at each step. 0 (the default)
// keeps every request at exactly tokensPerSecond.

import { DueHeap, type HeapItem } from './due-heap.ts'
import type { EngineCounters } from './metrics.ts'
import type { SimOptions } from './options.ts'

export type JobState = 'new' | 'queued' | 'running' | 'done'
export type FinishReason = 'length' | 'stop'

/** Timers fire at millisecond granularity; tokens due within this much of now go out in the same wake. */
const SLACK_MS = 1

export class Job implements HeapItem {
  state: JobState = 'new'
  due = 0
  heapIndex = -1
  slot = -1
  /** Sequence number given when the job gets a slot (llama.cpp's id_task). */
  taskId = -1
  emitted = 0
  enqueuedAt = 0
  startedAt = 0
  cancelled = false
  /** FIFO queue links (intrusive, so a cancelled waiter leaves the queue in O(1)). */
  prev: Job | null = null
  next: Job | null = null
  readonly tokens: number
  readonly promptTokens: number
  readonly finishReason: FinishReason

  constructor(tokens: number, promptTokens: number, finishReason: FinishReason) {
    this.tokens = tokens
    this.promptTokens = promptTokens
    this.finishReason = finishReason
  }

  // Hooks for the wire-format subclasses; the scheduler calls them, nothing else should.
  /** The request got a slot; prefill starts now. */
  onStart(): void {}
  /** `count` more tokens are due (emitted counts them already). */
  onTokens(_count: number): void {}
  /** All tokens were emitted; the slot is already free. */
  onFinish(): void {}
}

/** The knobs the scheduler reads; their meaning is documented on SimOptions. */
export type SchedulerConfig = Pick<SimOptions, 'slots' | 'queueLimit' | 'ttftMs' | 'tokensPerSecond' | 'prefillTokensPerSecond' | 'decodeSlowdown' | 'stallAfterTokens'>

export class Scheduler {
  private readonly cfg: SchedulerConfig
  private readonly counters: EngineCounters
  private readonly slotJobs: (Job | null)[]
  private readonly freeSlots: number[]
  private readonly heap = new DueHeap<Job>()
  private queueHead: Job | null = null
  private queueTail: Job | null = null
  private queued = 0
  private busy = 0
  private timer: NodeJS.Timeout | null = null
  private timerAt = Infinity
  private idleWaiters: (() => void)[] = []
  private tasks = 0
  private readonly wake: () => void

  constructor(cfg: SchedulerConfig, counters: EngineCounters) {
    this.cfg = cfg
    this.counters = counters
    this.slotJobs = new Array<Job | null>(cfg.slots).fill(null)
    // Lowest id first, like llama.cpp hands out slot 0 before slot 1.
    this.freeSlots = Array.from({ length: cfg.slots }, (_, i) => cfg.slots - 1 - i)
    this.wake = () => this.onTimer()
  }

  get running(): number {
    return this.busy
  }

  get waiting(): number {
    return this.queued
  }

  get slots(): number {
    return this.cfg.slots
  }

  slotJob(id: number): Job | null {
    return this.slotJobs[id] ?? null
  }

  /** Whether `submit` would accept a request now. */
  hasRoom(): boolean {
    return this.freeSlots.length > 0 || this.queued < this.cfg.queueLimit
  }

  /** Starts or enqueues `job`; false when every slot is busy and the queue is full. */
  submit(job: Job): boolean {
    const now = performance.now()
    job.enqueuedAt = now
    if (this.freeSlots.length > 0) {
      this.start(job, now)
      this.arm()
      return true
    }
    if (this.queued >= this.cfg.queueLimit) return false
    job.state = 'queued'
    job.prev = this.queueTail
    if (this.queueTail) this.queueTail.next = job
    else this.queueHead = job
    this.queueTail = job
    this.queued++
    return true
  }

  /** Stops `job` wherever it is (queued, running, stalled): frees its slot or queue place at once. */
  cancel(job: Job): void {
    if (job.state === 'queued') {
      this.unqueue(job)
    } else if (job.state === 'running') {
      this.heap.remove(job)
      this.release(job)
    } else {
      return
    }
    job.state = 'done'
    job.cancelled = true
    this.counters.requestsAborted++
    this.admit(performance.now())
    this.arm()
    this.checkIdle()
  }

  /** Cancels everything (used by an immediate shutdown). */
  cancelAll(): void {
    while (this.queueHead) this.cancel(this.queueHead)
    for (const job of this.slotJobs) if (job) this.cancel(job)
    this.heap.clear()
    this.disarm()
  }

  /** Resolves once nothing is running or waiting. */
  whenIdle(): Promise<void> {
    if (this.busy === 0 && this.queued === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private start(job: Job, now: number): void {
    const slot = this.freeSlots.pop() as number
    this.slotJobs[slot] = job
    this.busy++
    job.slot = slot
    job.taskId = this.tasks++
    job.state = 'running'
    job.startedAt = now
    const prefillMs = this.cfg.prefillTokensPerSecond > 0 ? (job.promptTokens * 1000) / this.cfg.prefillTokensPerSecond : 0
    job.due = now + this.cfg.ttftMs + prefillMs
    this.counters.promptTokens += job.promptTokens
    this.counters.queueSeconds.observe((now - job.enqueuedAt) / 1000)
    job.onStart()
    if (job.state === 'running') this.heap.push(job)
  }

  private release(job: Job): void {
    this.slotJobs[job.slot] = null
    this.freeSlots.push(job.slot)
    this.busy--
  }

  private unqueue(job: Job): void {
    if (job.prev) job.prev.next = job.next
    else this.queueHead = job.next
    if (job.next) job.next.prev = job.prev
    else this.queueTail = job.prev
    job.prev = job.next = null
    this.queued--
  }

  private admit(now: number): void {
    while (this.freeSlots.length > 0 && this.queueHead) {
      const job = this.queueHead
      this.unqueue(job)
      this.start(job, now)
    }
  }

  private interval(): number {
    const tps = this.cfg.tokensPerSecond
    if (tps <= 0) return 0
    return ((1 + this.cfg.decodeSlowdown * Math.max(0, this.busy - 1)) * 1000) / tps
  }

  private onTimer(): void {
    this.timer = null
    this.timerAt = Infinity
    const now = performance.now()
    const horizon = now + SLACK_MS
    const heap = this.heap
    for (let top = heap.peek(); top !== undefined && top.due <= horizon; top = heap.peek()) {
      heap.pop()
      this.advance(top, now, horizon)
    }
    this.arm()
  }

  private advance(job: Job, now: number, horizon: number): void {
    const limit = Math.min(job.tokens, this.cfg.stallAfterTokens)
    const step = this.interval()
    let count = 0
    while (job.emitted + count < limit && job.due <= horizon) {
      count++
      job.due += step
      if (step === 0) {
        count = limit - job.emitted
        break
      }
    }
    if (count > 0) {
      if (job.emitted === 0) this.counters.ttftSeconds.observe((now - job.enqueuedAt) / 1000)
      job.emitted += count
      this.counters.generatedTokens += count
      job.onTokens(count)
      if (job.state !== 'running') return // cancelled from inside the hook
    }
    if (job.emitted >= job.tokens) {
      this.release(job)
      job.state = 'done'
      if (job.finishReason === 'stop') this.counters.requestsStopped++
      else this.counters.requestsLength++
      job.onFinish()
      this.admit(now)
      this.checkIdle()
    } else if (job.emitted < limit) {
      this.heap.push(job)
    }
    // else: stalled on purpose; it holds its slot until cancelled.
  }

  private arm(): void {
    const top = this.heap.peek()
    if (top === undefined) {
      this.disarm()
      return
    }
    if (this.timer !== null && this.timerAt <= top.due) return
    if (this.timer !== null) clearTimeout(this.timer)
    // setTimeout truncates fractional delays; round up so we never wake early.
    const delay = Math.max(0, Math.ceil(top.due - performance.now()))
    this.timerAt = top.due
    this.timer = setTimeout(this.wake, delay)
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.timerAt = Infinity
  }

  private checkIdle(): void {
    if (this.busy !== 0 || this.queued !== 0 || this.idleWaiters.length === 0) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }
}
