/**
 * bench/traffic: workloads for open-loop replays. Pure and seeded, so every
 * front under test sees the very same arrivals; the only I/O is the trace
 * file reader at the bottom.
 *
 * Shape of a generated workload (defaults, all overridable):
 *
 * - Arrivals are bursty. Either a renewal process whose inter-arrival times
 *   are Gamma distributed with coefficient of variation `cv` (default 3:
 *   shape k = 1/cv² = 1/9, most gaps tiny, a few very long, as production
 *   LLM traffic looks), or an on/off process (`mode: 'onoff'`): Poisson
 *   arrivals during "on" periods, none during "off" periods, both of
 *   exponentially distributed length. A Poisson process is `cv: 1`.
 * - Output lengths are heavy-tailed: lognormal, median 20 tokens, sigma 1.0,
 *   rounded and clipped to [1, 400]. Then p90 ≈ 72, p99 ≈ 204 tokens and the
 *   mean ≈ 32 tokens: most answers short, a few long ones hold a slot ~10×
 *   longer, which is what makes least-connections routing guess wrong.
 * - Prompt lengths: lognormal, median 128 tokens, sigma 1.0, clipped to
 *   [4, 2048].
 *
 * The absolute time scale of a generated trace does not matter: a replay
 * rescales it to a target fraction of the replicas' slot capacity
 * (`rescaleToLoad`, `windowAtLoad`).
 */
import { readFileSync } from 'node:fs'

export interface Arrival {
  /** Milliseconds after the start of the replay. */
  at_ms: number
  prompt_tokens: number
  output_tokens: number
}

/** How a replica serves, as the sim is configured: what capacity is computed from. */
export interface ReplicaSpeed {
  slots: number
  ttft_ms: number
  tokens_per_second: number
}

export interface LognormalSpec { median: number, sigma: number, min: number, max: number }

export interface TrafficOptions {
  seed: number
  count: number
  /** Mean inter-arrival time before any rescaling. */
  mean_interarrival_ms: number
  mode: 'gamma' | 'onoff'
  /** Coefficient of variation of inter-arrival times (gamma mode). */
  cv: number
  /** Mean lengths of on and off periods (onoff mode). */
  on_ms: number
  off_ms: number
  output: LognormalSpec
  prompt: LognormalSpec
}

export const DEFAULT_TRAFFIC: TrafficOptions = {
  seed: 1,
  count: 1000,
  mean_interarrival_ms: 100,
  mode: 'gamma',
  cv: 3,
  on_ms: 2000,
  off_ms: 6000,
  output: { median: 20, sigma: 1.0, min: 1, max: 400 },
  prompt: { median: 128, sigma: 1.0, min: 4, max: 2048 }
}

// ---- random numbers ---------------------------------------------------------

/** mulberry32: a tiny, fast 32-bit PRNG; uniform in [0, 1). Good enough for workloads, and reproducible everywhere. */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Uniform in (0, 1]: never 0, so logs and powers stay finite. */
function open01 (rand: () => number): number {
  return 1 - rand()
}

/** Standard normal by Box–Muller (one of the pair is dropped: simpler state, and speed does not matter here). */
export function normal (rand: () => number): number {
  return Math.sqrt(-2 * Math.log(open01(rand))) * Math.cos(2 * Math.PI * rand())
}

/**
 * Gamma(shape k, scale 1) by Marsaglia–Tsang (2000). Their method needs
 * k ≥ 1; for k < 1 it samples Gamma(k + 1) and multiplies by U^(1/k)
 * (the "boost"), which is exact.
 */
export function gamma (rand: () => number, k: number): number {
  if (k < 1) return gamma(rand, k + 1) * Math.pow(open01(rand), 1 / k)
  const d = k - 1 / 3
  const c = 1 / Math.sqrt(9 * d)
  for (;;) {
    const x = normal(rand)
    const v0 = 1 + c * x
    if (v0 <= 0) continue
    const v = v0 * v0 * v0
    const u = open01(rand)
    if (u < 1 - 0.0331 * x * x * x * x) return d * v
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v
  }
}

/** Exponential with the given mean. */
function exponential (rand: () => number, mean: number): number {
  return -Math.log(open01(rand)) * mean
}

/** An integer length: lognormal around `median`, rounded and clipped. */
export function lognormalLength (rand: () => number, s: LognormalSpec): number {
  const x = s.median * Math.exp(s.sigma * normal(rand))
  return Math.min(s.max, Math.max(s.min, Math.round(x)))
}

// ---- generated workloads ----------------------------------------------------

/** Inter-arrival gaps of a Gamma renewal process: mean `mean`, coefficient of variation `cv`. */
export function gammaGaps (rand: () => number, count: number, mean: number, cv: number): number[] {
  const k = 1 / (cv * cv)
  const scale = mean / k // Gamma(k, θ) has mean kθ and CV 1/√k
  return Array.from({ length: count }, () => gamma(rand, k) * scale)
}

/**
 * Arrival times of an on/off (two-state Markov-modulated Poisson) process:
 * Poisson during "on" at the rate that gives the requested overall mean,
 * nothing during "off". Starts in an "on" period.
 */
export function onOffTimes (rand: () => number, count: number, mean: number, onMs: number, offMs: number): number[] {
  const onMean = mean * onMs / (onMs + offMs) // inter-arrival while on
  const out: number[] = []
  let t = 0
  let onUntil = exponential(rand, onMs)
  while (out.length < count) {
    t += exponential(rand, onMean)
    // Time past the end of an "on" period is carried over the "off" period
    // that follows: the memoryless gap simply resumes in the next "on".
    while (t > onUntil) {
      const off = exponential(rand, offMs)
      t += off
      onUntil += off + exponential(rand, onMs)
    }
    out.push(t)
  }
  return out
}

/** A seeded workload; the first request arrives at 0. Same options, same list. */
export function generate (opts: Partial<TrafficOptions> = {}): Arrival[] {
  const o: TrafficOptions = { ...DEFAULT_TRAFFIC, ...opts }
  // Separate streams for arrivals and lengths, so changing the arrival mode
  // keeps request i's lengths the same.
  const arrivals = mulberry32(o.seed)
  const lengths = mulberry32(o.seed ^ 0x9e3779b9)
  let times: number[]
  if (o.mode === 'onoff') {
    times = onOffTimes(arrivals, o.count, o.mean_interarrival_ms, o.on_ms, o.off_ms)
  } else {
    const gaps = gammaGaps(arrivals, Math.max(0, o.count - 1), o.mean_interarrival_ms, o.cv)
    times = [0]
    for (const g of gaps) times.push(times[times.length - 1]! + g)
  }
  const t0 = times[0] ?? 0
  return times.map((t) => ({
    at_ms: t - t0,
    prompt_tokens: lognormalLength(lengths, o.prompt),
    output_tokens: lognormalLength(lengths, o.output)
  }))
}

// ---- load -------------------------------------------------------------------

export function mean (xs: number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length
}

/** Coefficient of variation: standard deviation over mean. */
export function cv (xs: number[]): number {
  const m = mean(xs)
  const v = xs.reduce((a, x) => a + (x - m) * (x - m), 0) / (xs.length - 1)
  return Math.sqrt(v) / m
}

export function interArrivals (trace: Arrival[]): number[] {
  return trace.slice(1).map((a, i) => a.at_ms - trace[i]!.at_ms)
}

/**
 * Offered load as an arrival rate, requests per second: (n − 1) arrivals
 * over the span from the first to the last, the unbiased estimate of
 * 1 / mean inter-arrival time.
 */
export function arrivalRate (trace: Arrival[]): number {
  if (trace.length < 2) return 0
  const span = trace[trace.length - 1]!.at_ms - trace[0]!.at_ms
  return span > 0 ? (trace.length - 1) / (span / 1000) : Infinity
}

/**
 * Requests per second the replicas complete when every slot is busy, for
 * this trace's mix of output lengths: Σ slots / mean service time, where a
 * request's service time on a replica is ttft + output_tokens / tokens_per_second.
 */
export function slotCapacity (replicas: ReplicaSpeed[], trace: Arrival[]): number {
  const meanOutput = mean(trace.map((a) => a.output_tokens))
  return replicas.reduce((sum, r) => sum + r.slots / (r.ttft_ms / 1000 + meanOutput / r.tokens_per_second), 0)
}

/** Offered load as a fraction of slot capacity. */
export function offeredLoad (trace: Arrival[], replicas: ReplicaSpeed[]): number {
  return arrivalRate(trace) / slotCapacity(replicas, trace)
}

/**
 * The same arrivals, stretched or squeezed in time (their order and relative
 * gaps kept, so the burstiness is kept) until the arrival rate is `load` ×
 * slot capacity. The first arrival moves to 0.
 */
export function rescaleToLoad (trace: Arrival[], replicas: ReplicaSpeed[], load: number): Arrival[] {
  if (trace.length < 2) return trace.map((a) => ({ ...a, at_ms: 0 }))
  const factor = arrivalRate(trace) / (load * slotCapacity(replicas, trace))
  const t0 = trace[0]!.at_ms
  return trace.map((a) => ({ ...a, at_ms: (a.at_ms - t0) * factor }))
}

/**
 * The longest prefix of `trace` that, rescaled to `load`, spans about
 * `seconds`: what one replay of that length at that load sends. Capacity
 * depends on the prefix's own output lengths, so the prefix length is found
 * by a few fixed-point steps. Throws when the trace is too short.
 */
export function windowAtLoad (trace: Arrival[], replicas: ReplicaSpeed[], load: number, seconds: number): Arrival[] {
  let n = trace.length
  for (let i = 0; i < 8; i++) {
    const want = Math.max(2, Math.round(seconds * load * slotCapacity(replicas, trace.slice(0, n))) + 1)
    if (want > trace.length) throw new Error(`the trace has ${trace.length} requests; ${want} are needed for ${seconds} s at load ${load}`)
    if (want === n) break
    n = want
  }
  return rescaleToLoad(trace.slice(0, n), replicas, load)
}

// ---- real traces ------------------------------------------------------------

/**
 * A timestamp of the Azure LLM inference trace: ISO date-time such as
 * `2023-11-16 18:15:46.6805900` (any number of fraction digits, optional
 * zone; none means UTC, only differences matter), or plain seconds.
 * Milliseconds; NaN when unreadable.
 */
export function parseTimestamp (s: string): number {
  const x = s.trim()
  if (/^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(x)) return Number(x) * 1000
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(x)
  if (m === null) return NaN
  const [, y, mo, d, h, mi, sec, frac, zone] = m
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec))
  if (frac !== undefined) ms += Number(`0.${frac}`) * 1000 // Date.parse stops at 3 digits; the trace has 7
  if (zone !== undefined && zone !== 'Z') {
    const z = /([+-])(\d{2}):?(\d{2})/.exec(zone)!
    ms -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000
  }
  return ms
}

/**
 * Rows of an Azure LLM inference trace CSV (`TIMESTAMP,ContextTokens,GeneratedTokens`,
 * header optional), sorted by time, the first at 0. Token counts are clipped
 * to at least 1 (a request for 0 tokens is not one a server can answer).
 * Throws on a row it cannot read, naming the line.
 */
export function parseAzureTrace (text: string): Arrival[] {
  const rows: Arrival[] = []
  const lines = text.split(/\r?\n/)
  lines.forEach((line, i) => {
    if (line.trim() === '') return
    const cols = line.split(',').map((c) => c.trim())
    if (i === 0 && /[a-z]/i.test(cols[1] ?? '')) return // the header row
    const at = parseTimestamp(cols[0] ?? '')
    const prompt = Number(cols[1])
    const output = Number(cols[2])
    if (cols.length < 3 || Number.isNaN(at) || !Number.isFinite(prompt) || !Number.isFinite(output)) {
      throw new Error(`trace line ${i + 1}: expected TIMESTAMP,ContextTokens,GeneratedTokens, got ${JSON.stringify(line.slice(0, 120))}`)
    }
    rows.push({ at_ms: at, prompt_tokens: Math.max(1, Math.round(prompt)), output_tokens: Math.max(1, Math.round(output)) })
  })
  rows.sort((a, b) => a.at_ms - b.at_ms)
  const t0 = rows[0]?.at_ms ?? 0
  return rows.map((r) => ({ ...r, at_ms: r.at_ms - t0 }))
}

/** Reads a trace file (the one I/O function here). */
export function loadAzureTrace (path: string): Arrival[] {
  return parseAzureTrace(readFileSync(path, 'utf8'))
}
