/**
 * The two HTTP requests the supervisor makes to its engine: the readiness
 * probe and the `/metrics` scrape. Each has a deadline over the whole
 * exchange (connect, headers and body), reads a bounded body, and never
 * throws: it returns what happened in words fit for `snapshot().reason`.
 */
import { request, type Dispatcher } from 'undici'
import { engineLoadFromText, type EngineLoad } from './engine-metrics.ts'
import { secs, type ProbeOutcome, type ProbeRules } from './probe.ts'

/** A probe's answer is read up to this much (and the rest dropped), so a keep-alive connection can be reused. */
export const PROBE_BODY_LIMIT = 64 * 1024
/** vLLM's exposition with its histograms is ~100 KiB per model; anything beyond this is not an engine's metrics. */
export const METRICS_BODY_LIMIT = 4 * 1024 * 1024

interface Exchange { status: number, body: string, truncated: boolean }

class ExchangeError extends Error {}

/** One request with a deadline over the whole exchange; throws ExchangeError with a readable message. */
async function exchange (dispatcher: Dispatcher, url: string, opts: { method: 'GET' | 'POST', body?: string, timeoutMs: number, maxBytes: number }): Promise<Exchange> {
  const ac = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; ac.abort() }, opts.timeoutMs)
  try {
    const res = await request(url, {
      dispatcher,
      method: opts.method,
      body: opts.body,
      headers: opts.body === undefined ? { accept: '*/*' } : { 'content-type': 'application/json', accept: '*/*' },
      signal: ac.signal,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs
    })
    const chunks: Buffer[] = []
    let size = 0
    let truncated = false
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (size + chunk.length > opts.maxBytes) {
        chunks.push(chunk.subarray(0, opts.maxBytes - size))
        truncated = true
        res.body.destroy()
        break
      }
      chunks.push(chunk)
      size += chunk.length
    }
    return { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), truncated }
  } catch (err) {
    if (timedOut) throw new ExchangeError(`timed out after ${secs(opts.timeoutMs)}`)
    throw new ExchangeError(describeError(err))
  } finally {
    clearTimeout(timer)
  }
}

function describeError (err: unknown): string {
  const e = err as { code?: string, message?: string, cause?: { code?: string, message?: string } }
  const code = e.code ?? e.cause?.code
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection closed by the engine'
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timed out'
  const msg = e.message ?? e.cause?.message ?? String(err)
  return code !== undefined && !msg.includes(code) ? `${msg} (${code})` : msg
}

function oneLine (s: string, max = 200): string {
  const flat = s.replace(/\s+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}

/** GET `path`, or POST `post_data` as JSON; any 2xx passes. */
export async function runProbe (dispatcher: Dispatcher, baseUrl: string, rules: ProbeRules): Promise<ProbeOutcome> {
  const post = rules.postData !== null && rules.postData !== undefined
  const what = `${post ? 'POST' : 'GET'} ${rules.path}`
  try {
    const res = await exchange(dispatcher, baseUrl + rules.path, {
      method: post ? 'POST' : 'GET',
      body: post ? JSON.stringify(rules.postData) : undefined,
      timeoutMs: rules.timeoutMs,
      maxBytes: PROBE_BODY_LIMIT
    })
    if (res.status >= 200 && res.status < 300) return { ok: true }
    const body = oneLine(res.body)
    return { ok: false, detail: `${what} answered ${res.status}${body !== '' ? ` ${body}` : ''}` }
  } catch (err) {
    return { ok: false, detail: `${what}: ${(err as Error).message}` }
  }
}

export type ScrapeResult =
  | { ok: true, load: EngineLoad | null }
  | { ok: false, detail: string }

/** GET `/metrics` and read the engine's load from it; `load` null when it publishes none of the known gauges. */
export async function scrapeEngine (dispatcher: Dispatcher, baseUrl: string, timeoutMs: number): Promise<ScrapeResult> {
  try {
    const res = await exchange(dispatcher, `${baseUrl}/metrics`, { method: 'GET', timeoutMs, maxBytes: METRICS_BODY_LIMIT })
    if (res.status === 404 || res.status === 501) return { ok: true, load: null }
    if (res.status < 200 || res.status >= 300) return { ok: false, detail: `GET /metrics answered ${res.status}` }
    if (res.truncated) return { ok: false, detail: `GET /metrics: more than ${METRICS_BODY_LIMIT} bytes` }
    return { ok: true, load: engineLoadFromText(res.body) }
  } catch (err) {
    return { ok: false, detail: `GET /metrics: ${(err as Error).message}` }
  }
}
