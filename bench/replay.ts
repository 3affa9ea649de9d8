/**
 * bench/replay: open-loop replay of a workload (bench/traffic.ts) against
 * one or more front doors, and a sampler of the replicas' and entry nodes'
 * queues while it runs. Open loop: each request leaves at its arrival time
 * whatever happened to the ones before it, with no client-side concurrency
 * limit, so a front that falls behind sees its queue grow as real clients
 * would make it grow (a closed loop would slow down with it and hide that).
 */
import { Pool } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import { parsePrometheusText } from '../daemon/replica/prom-text.ts'
import type { Arrival } from './traffic.ts'
import { quantile } from './stats.ts'

export interface Outcome {
  /** Index of the front door (origin) the request was sent to. */
  entry: number
  /** Milliseconds after the replay started: when it was due and when it left. */
  dueAt: number
  sentAt: number
  finishedAt: number
  /** 0 when no response arrived. */
  status: number
  retryAfter: boolean
  /** A 200 whose stream ended with every requested token and `[DONE]`. */
  ok: boolean
  error?: string
  /** From sending to the first content token, and to the end of the stream. */
  ttftMs: number
  totalMs: number
  /** Replica index that served it, when the front said; null otherwise. */
  servedBy: number | null
}

export interface ReplayOptions {
  /** Which replica served a response, read from its headers (each front has its own tag). */
  servedBy: (headers: IncomingHttpHeaders) => number | null
  model: string
  /** A request still unfinished after this long is abandoned and counted as failed. */
  timeoutMs: number
}

const TOKEN = '"delta":{"content":' // a token chunk; the role chunk is {"role":"assistant","content":""}

/** Roughly `tokens` prompt tokens: the sim counts ~4 characters a token, so one short word each. */
function prompt (tokens: number): string {
  return 'tok '.repeat(tokens)
}

function header (h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v[0] : v
}

/** One streamed chat completion, read to the end. Never throws: failures are outcomes. */
async function one (pool: Pool, a: Arrival, entry: number, dueAt: number, t0: number, o: ReplayOptions): Promise<Outcome> {
  const start = performance.now()
  const out: Outcome = { entry, dueAt, sentAt: start - t0, finishedAt: 0, status: 0, retryAfter: false, ok: false, ttftMs: NaN, totalMs: NaN, servedBy: null }
  const body = JSON.stringify({ model: o.model, messages: [{ role: 'user', content: prompt(a.prompt_tokens) }], max_tokens: a.output_tokens, stream: true })
  try {
    const r = await pool.request({
      method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body,
      signal: AbortSignal.timeout(o.timeoutMs), headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs
    })
    out.status = r.statusCode
    out.retryAfter = header(r.headers, 'retry-after') !== undefined
    out.servedBy = o.servedBy(r.headers)
    let text = ''
    for await (const chunk of r.body) {
      const s = (chunk as Buffer).toString()
      // Search across the chunk boundary too: a marker may be split in two.
      if (Number.isNaN(out.ttftMs) && (text.slice(-TOKEN.length) + s).includes(TOKEN)) out.ttftMs = performance.now() - start
      text += s
    }
    out.totalMs = performance.now() - start
    const tokens = text.split(TOKEN).length - 1
    out.ok = r.statusCode === 200 && tokens === a.output_tokens && text.includes('data: [DONE]')
    if (r.statusCode === 200 && !out.ok) out.error = `broken stream: ${tokens} of ${a.output_tokens} tokens${text.includes('data: [DONE]') ? '' : ', no [DONE]'}`
  } catch (err) {
    out.error = (err as Error).message
    out.totalMs = performance.now() - start
  }
  out.finishedAt = performance.now() - t0
  return out
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) }

/**
 * Sends request i of `trace` to `origins[i mod origins.length]` at its
 * arrival time and waits for all of them (each bounded by `timeoutMs`).
 */
export async function replay (trace: Arrival[], origins: string[], o: ReplayOptions): Promise<Outcome[]> {
  // Plenty of connections: a pool that ran out would queue requests in the client, closing the loop.
  const pools = origins.map((origin) => new Pool(origin, { connections: 2048, pipelining: 1 }))
  const t0 = performance.now()
  const pending: Array<Promise<Outcome>> = []
  for (const [i, a] of trace.entries()) {
    await sleep(a.at_ms - (performance.now() - t0))
    pending.push(one(pools[i % pools.length]!, a, i % pools.length, a.at_ms, t0, o))
  }
  const outcomes = await Promise.all(pending)
  await Promise.all(pools.map(async (p) => { await p.close() }))
  return outcomes
}

// ---- sampling the queues ------------------------------------------------------

export interface QueueSample {
  /** Per replica: requests holding a slot, and waiting for one, in its engine. */
  running: number[]
  waiting: number[]
  /** Per entry node (meshd only): requests waiting at the front door. */
  entryQueues: number[]
}

export interface SamplerTargets {
  /** Each replica's base URL and slots. */
  replicas: Array<{ url: string, slots: number }>
  /** Base URLs whose /metrics has meshd_entry_queue_length; empty for nginx. */
  entries: string[]
}

async function scrape (url: string): Promise<Map<string, number>> {
  const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })
  const m = new Map<string, number>()
  // Summed over label sets: the sim labels its gauges by model, one model here.
  for (const s of parsePrometheusText(await r.text()).samples) m.set(s.name, (m.get(s.name) ?? 0) + s.value)
  return m
}

export async function sampleOnce (t: SamplerTargets): Promise<QueueSample> {
  const [reps, entries] = await Promise.all([Promise.all(t.replicas.map(async (r) => await scrape(r.url))), Promise.all(t.entries.map(scrape))])
  return {
    running: reps.map((m) => m.get('vllm:num_requests_running') ?? NaN),
    waiting: reps.map((m) => m.get('vllm:num_requests_waiting') ?? NaN),
    entryQueues: entries.map((m) => m.get('meshd_entry_queue_length') ?? NaN)
  }
}

/** Samples every `everyMs` until stopped; a scrape that fails or overruns its tick is skipped, not retried. */
export function startSampler (t: SamplerTargets, everyMs: number): { stop: () => QueueSample[] } {
  const samples: QueueSample[] = []
  let busy = false
  const timer = setInterval(() => {
    if (busy) return
    busy = true
    sampleOnce(t).then((s) => { samples.push(s) }, () => {}).finally(() => { busy = false })
  }, everyMs)
  return { stop: () => { clearInterval(timer); return samples } }
}

/** A request waits somewhere while some replica has a free slot: work the routing could have placed. */
export function waitedWhileFree (s: QueueSample, slots: number[]): boolean {
  const someoneWaits = s.entryQueues.some((q) => q > 0) || s.waiting.some((w) => w > 0)
  const someSlotFree = s.running.some((r, i) => r < slots[i]!)
  return someoneWaits && someSlotFree
}

/** Polls until every replica is idle and every entry queue empty; the milliseconds it took. Throws past the deadline. */
export async function waitIdle (t: SamplerTargets, deadlineMs: number): Promise<number> {
  const start = performance.now()
  for (;;) {
    try {
      const s = await sampleOnce(t)
      if ([...s.running, ...s.waiting, ...s.entryQueues].every((x) => x === 0)) return performance.now() - start
    } catch {}
    if (performance.now() - start > deadlineMs) throw new Error(`replicas still busy after ${deadlineMs} ms`)
    await sleep(250)
  }
}

// ---- summary -----------------------------------------------------------------

export interface ReplaySummary {
  requests: number
  failed: number
  status429: number
  status429WithRetryAfter: number
  ttft: [number, number, number]
  /** Mean time to first token: with the same work done, a front that serves strictly in order has a median closer to it. */
  ttftMean: number
  total: [number, number, number]
  /** TTFT p50 per entry node. */
  entryTtftP50: number[]
  /** Share of the served (ok) requests that `replica` served; NaN when the front never said. */
  share: number
  drainMs: number
  /** Lateness of the client itself: p99 of sent − due. */
  sendLagP99: number
  errors: Map<string, number>
}

const q3 = (xs: number[]): [number, number, number] => [quantile(xs, 0.5), quantile(xs, 0.9), quantile(xs, 0.99)]

export function summarize (outs: Outcome[], entries: number, replica: number): ReplaySummary {
  const ok = outs.filter((o) => o.ok)
  const errors = new Map<string, number>()
  for (const o of outs) {
    if (o.ok) continue
    const why = o.error ?? `status ${o.status}`
    errors.set(why, (errors.get(why) ?? 0) + 1)
  }
  const known = ok.filter((o) => o.servedBy !== null)
  return {
    requests: outs.length,
    failed: outs.length - ok.length,
    status429: outs.filter((o) => o.status === 429).length,
    status429WithRetryAfter: outs.filter((o) => o.status === 429 && o.retryAfter).length,
    ttft: q3(ok.map((o) => o.ttftMs)),
    ttftMean: ok.reduce((a, o) => a + o.ttftMs, 0) / Math.max(1, ok.length),
    total: q3(ok.map((o) => o.totalMs)),
    entryTtftP50: Array.from({ length: entries }, (_, e) => quantile(ok.filter((o) => o.entry === e).map((o) => o.ttftMs), 0.5)),
    share: known.length === 0 ? NaN : known.filter((o) => o.servedBy === replica).length / known.length,
    drainMs: Math.max(...outs.map((o) => o.finishedAt)) - Math.max(...outs.map((o) => o.sentAt)),
    sendLagP99: quantile(outs.map((o) => o.sentAt - o.dueAt), 0.99),
    errors
  }
}
