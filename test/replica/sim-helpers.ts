// Shared plumbing for the simulator tests: servers that clean up after
// themselves, an SDK client that never retries behind a test's back, metric
// scraping, and condition waits with a deadline.

import OpenAI from 'openai'
import { startSimServer, type SimServer, type SimServerOptions } from '../../daemon/replica/sim/server.ts'

export interface HasTeardown {
  teardown(fn: () => unknown): void
}

/** A simulator on an OS-chosen port, closed when the test ends (pass or fail). */
export async function startSim(t: HasTeardown, opts: SimServerOptions = {}): Promise<SimServer> {
  const sim = await startSimServer({ port: 0, ...opts })
  t.teardown(() => sim.close())
  return sim
}

export function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sim-key', maxRetries: 0, timeout: 20_000 })
}

/** The value of the first sample of `name` (any labels) in the /metrics exposition. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue
    if (labels && !rest.includes(labels)) continue
    const v = Number(line.slice(line.lastIndexOf(' ') + 1))
    if (Number.isFinite(v)) return v
  }
  return undefined
}

export async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`)
  return res.text()
}

export async function metric(url: string, name: string, labels = ''): Promise<number> {
  const v = metricValue(await scrape(url), name, labels)
  if (v === undefined) throw new Error(`metric ${name}${labels} not exposed`)
  return v
}

/** Polls `probe` until it returns something other than undefined/false, or throws after `deadlineMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, deadlineMs = 1000, everyMs = 5): Promise<T> {
  const until = performance.now() + deadlineMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    if (performance.now() >= until) {
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`)
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export interface TimedChunk<C> {
  at: number
  chunk: C
}

/** Drains an SDK stream, stamping every chunk with its arrival time. */
export async function collect<C>(stream: AsyncIterable<C>): Promise<TimedChunk<C>[]> {
  const out: TimedChunk<C>[] = []
  for await (const chunk of stream) out.push({ at: performance.now(), chunk })
  return out
}

export function chat(content: string): { role: 'user'; content: string }[] {
  return [{ role: 'user', content }]
}
