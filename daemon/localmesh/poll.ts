/**
 * Waiting on conditions, never on fixed sleeps: poll a probe until it
 * returns a truthy value or the deadline passes, then fail with what was
 * last seen, so a failure says what the system was doing.
 */
export class WaitTimeout extends Error {
  readonly last: unknown
  constructor (what: string, ms: number, last: unknown) {
    super(`timed out after ${ms} ms waiting for ${what}; last seen: ${safeJson(last)}`)
    this.name = 'WaitTimeout'
    this.last = last
  }
}

export interface WaitOptions {
  timeoutMs: number
  intervalMs?: number
  what: string
}

/** Resolves with the probe's first truthy result and the time it took. */
export async function waitFor<T> (probe: () => T | Promise<T>, opts: WaitOptions): Promise<{ value: NonNullable<T>, ms: number }> {
  const start = performance.now()
  const interval = opts.intervalMs ?? 100
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      last = v
      if (v !== undefined && v !== null && v !== false) return { value: v as NonNullable<T>, ms: performance.now() - start }
    } catch (err) {
      last = (err as Error).message
    }
    const elapsed = performance.now() - start
    if (elapsed >= opts.timeoutMs) throw new WaitTimeout(opts.what, opts.timeoutMs, last)
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, opts.timeoutMs - elapsed)))
  }
}

function safeJson (v: unknown): string {
  try {
    const s = JSON.stringify(v)
    return s === undefined ? String(v) : s.length > 2000 ? s.slice(0, 2000) + '…' : s
  } catch {
    return String(v)
  }
}
