/**
 * Waiting on conditions, never on fixed sleeps: poll a probe until it
 * returns a truthy value or the deadline passes, then fail with what was
 * last seen, so a failure says what the system was doing. The one poll of
 * the local cluster (cluster.ts), the demo, the benchmarks and the tests.
 */
export class WaitTimeout extends Error {
  readonly last: unknown
  constructor (what: string, ms: number, last: unknown) {
    super(`timed out after ${ms} ms waiting for ${what}; last seen: ${safeJson(last)}`)
    this.name = 'WaitTimeout'
    this.last = last
  }
}

export class WaitAborted extends Error {
  constructor (what: string) {
    super(`stopped waiting for ${what}`)
    this.name = 'WaitAborted'
  }
}

export interface WaitOptions {
  timeoutMs: number
  intervalMs?: number
  what: string
  /** Stops the wait early (WaitAborted), e.g. on Ctrl-C. */
  signal?: AbortSignal
}

/**
 * Resolves with the probe's first result other than undefined, null and
 * false, and the time it took. A probe that throws counts as not yet.
 */
export async function waitFor<T> (probe: () => T | Promise<T>, opts: WaitOptions): Promise<{ value: NonNullable<T>, ms: number }> {
  const start = performance.now()
  const interval = opts.intervalMs ?? 100
  let last: unknown
  for (;;) {
    if (opts.signal?.aborted === true) throw new WaitAborted(opts.what)
    try {
      const v = await probe()
      last = v
      if (v !== undefined && v !== null && v !== false) return { value: v as NonNullable<T>, ms: performance.now() - start }
    } catch (err) {
      last = (err as Error).message
    }
    const elapsed = performance.now() - start
    if (elapsed >= opts.timeoutMs) throw new WaitTimeout(opts.what, opts.timeoutMs, last)
    await sleep(Math.min(interval, opts.timeoutMs - elapsed), opts.signal)
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) { resolve(); return }
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

function safeJson (v: unknown): string {
  try {
    const s = JSON.stringify(v)
    return s === undefined ? String(v) : s.length > 2000 ? s.slice(0, 2000) + '…' : s
  } catch {
    return String(v)
  }
}
