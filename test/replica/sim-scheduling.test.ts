// The simulator under load: slots and the FIFO queue as seen through the
// engine metrics, cancellation on client hang-up, pacing that holds with
// hundreds of concurrent streams, and the failure/timing knobs.

import t from 'tap'
import OpenAI from 'openai'
import { chat, client, collect, metric, metricValue, scrape, startSim, waitFor } from './sim-helpers.ts'

const VLLM_ABORT = 'finished_reason="abort"'
const VLLM_LENGTH = 'finished_reason="length"'

async function gauges(url: string): Promise<{ processing: number; deferred: number }> {
  const text = await scrape(url)
  return {
    processing: metricValue(text, 'llamacpp:requests_processing') ?? -1,
    deferred: metricValue(text, 'llamacpp:requests_deferred') ?? -1,
  }
}

t.test('slots=2 with 4 requests: two run, two wait (metrics, /slots), FIFO after', async (t) => {
  const tps = 100
  const tokens = 30
  const sim = await startSim(t, { models: ['m'], slots: 2, ttftMs: 0, tokensPerSecond: tps })
  const api = client(sim.url)
  const runs = [0, 1, 2, 3].map(async (i) => {
    const stream = await api.chat.completions.create({ model: 'm', messages: chat(`req ${i}`), max_tokens: tokens, stream: true })
    const chunks = await collect(stream)
    const content = chunks.filter((c) => (c.chunk.choices[0]?.delta.content ?? '') !== '')
    return { first: content[0]?.at ?? NaN, last: content.at(-1)?.at ?? NaN, count: content.length }
  })

  await waitFor('2 processing and 2 deferred', async () => {
    const g = await gauges(sim.url)
    return g.processing === 2 && g.deferred === 2
  })
  const text = await scrape(sim.url)
  t.equal(metricValue(text, 'vllm:num_requests_running'), 2)
  t.equal(metricValue(text, 'vllm:num_requests_waiting'), 2)
  t.equal(metricValue(text, 'vllm:gpu_cache_usage_perc'), 1, 'all slots busy = full KV cache')
  const slots = (await (await fetch(`${sim.url}/slots`)).json()) as { id: number; is_processing: boolean }[]
  t.same(
    slots.map((s) => [s.id, s.is_processing]),
    [
      [0, true],
      [1, true],
    ],
  )
  t.equal(sim.stats().inflight, 4)

  const done = (await Promise.all(runs)).sort((a, b) => a.first - b.first)
  t.ok(done.every((r) => r.count === tokens), 'every request got all its tokens')
  const [a, b, c, d] = done as [(typeof done)[0], (typeof done)[0], (typeof done)[0], (typeof done)[0]]
  const oneRequestMs = ((tokens - 1) * 1000) / tps
  const firstFreed = Math.min(a.last, b.last)
  t.ok(c.first >= firstFreed - 20, `a waiting request starts when a slot frees (${(c.first - firstFreed).toFixed(1)} ms)`)
  t.ok(d.first - a.first >= oneRequestMs * 0.9, 'the last one waited about a whole request')
  await waitFor('idle gauges', async () => {
    const g = await gauges(sim.url)
    return g.processing === 0 && g.deferred === 0
  })
  t.equal(await metric(sim.url, 'vllm:request_success_total', VLLM_LENGTH), 4)
})

t.test('a full queue answers 503 with Retry-After', async (t) => {
  const sim = await startSim(t, { models: ['m'], slots: 1, queueLimit: 1, ttftMs: 0, tokensPerSecond: 20 })
  const api = client(sim.url)
  const running = await api.chat.completions.create({ model: 'm', messages: chat('a'), max_tokens: 100000, stream: true })
  const waiting = await api.chat.completions.create({ model: 'm', messages: chat('b'), max_tokens: 100000, stream: true })
  t.teardown(() => {
    running.controller.abort()
    waiting.controller.abort()
  })
  t.same(await gauges(sim.url), { processing: 1, deferred: 1 })
  const res = await fetch(`${sim.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: chat('c') }),
  })
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1')
  t.match(await res.json(), { error: { type: 'server_error', code: 'engine_overloaded', param: null, message: String } })
  const sdk = await api.chat.completions.create({ model: 'm', messages: chat('d') }).catch((e: unknown) => e)
  t.ok(sdk instanceof OpenAI.APIError && sdk.status === 503, 'SDK sees 503')
  t.equal(await metric(sim.url, 'meshd_sim_requests_rejected_total', 'reason="queue_full"'), 2)
  t.same(await gauges(sim.url), { processing: 1, deferred: 1 }, 'refused requests never queued')
})

t.test('aborting a stream mid-way frees its slot within a second', async (t) => {
  const sim = await startSim(t, { models: ['m'], slots: 1, ttftMs: 0, tokensPerSecond: 50 })
  const api = client(sim.url)
  const stream = await api.chat.completions.create({ model: 'm', messages: chat('long'), max_tokens: 100000, stream: true })
  let seen = 0
  for await (const chunk of stream) {
    if ((chunk.choices[0]?.delta.content ?? '') !== '') seen++
    if (seen === 3) break // leaving the loop aborts the request
  }
  const abortedAt = performance.now()
  await waitFor('requests_processing back to 0', async () => (await gauges(sim.url)).processing === 0, 1000)
  t.comment(`slot freed ${(performance.now() - abortedAt).toFixed(1)} ms after the abort`)
  t.equal(sim.stats().inflight, 0)
  t.equal(sim.stats().cancelled, 1)
  t.equal(await metric(sim.url, 'vllm:request_success_total', VLLM_ABORT), 1)
  const generated = sim.stats().generatedTokens
  const next = await api.chat.completions.create({ model: 'm', messages: chat('next'), max_tokens: 2 })
  t.equal(next.usage?.completion_tokens, 2, 'the freed slot serves the next request')
  t.equal(sim.stats().generatedTokens, generated + 2, 'the aborted request stopped generating')
})

t.test('aborting a queued request removes it from the queue', async (t) => {
  const sim = await startSim(t, { models: ['m'], slots: 1, ttftMs: 0, tokensPerSecond: 50 })
  const api = client(sim.url)
  const running = await api.chat.completions.create({ model: 'm', messages: chat('a'), max_tokens: 100000, stream: true })
  t.teardown(() => running.controller.abort())
  const ac = new AbortController()
  const queued = api.chat.completions.create({ model: 'm', messages: chat('b'), max_tokens: 5 }, { signal: ac.signal }).catch((e: unknown) => e)
  await waitFor('one deferred', async () => (await gauges(sim.url)).deferred === 1)
  ac.abort()
  t.ok((await queued) instanceof OpenAI.APIUserAbortError, 'client saw its own abort')
  await waitFor('deferred back to 0', async () => (await gauges(sim.url)).deferred === 0, 1000)
  t.equal((await gauges(sim.url)).processing, 1, 'the running request is untouched')
  running.controller.abort()
  await waitFor('processing back to 0', async () => (await gauges(sim.url)).processing === 0, 1000)
  t.equal(sim.stats().cancelled, 2)
})

/** Streams one raw request and records when its first and last token arrived. */
async function timedStream(url: string, prompt: string, maxTokens: number): Promise<{ first: number; last: number; tokens: number }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: chat(prompt), max_tokens: maxTokens, stream: true }),
  })
  if (!res.body) throw new Error('no body')
  const decoder = new TextDecoder()
  let first = NaN
  let last = NaN
  let tokens = 0
  let carry = ''
  for await (const bytes of res.body) {
    const text = carry + decoder.decode(bytes, { stream: true })
    const events = text.split('\n\n')
    carry = events.pop() ?? ''
    for (const ev of events) {
      if (!ev.includes('"delta":{"content":')) continue
      tokens++
      last = performance.now()
      if (tokens === 1) first = last
    }
  }
  return { first, last, tokens }
}

t.test('pacing holds with 200 concurrent streams (no drift)', async (t) => {
  const n = 200
  const tps = 100
  const tokens = 50
  // The client shares this event loop: a ttft lets all 200 connections get set
  // up before tokens flow, so client-side stamps measure the server's pacing.
  const sim = await startSim(t, { models: ['m'], slots: n, ttftMs: 300, tokensPerSecond: tps })
  const started = performance.now()
  const results = await Promise.all(Array.from({ length: n }, (_, i) => timedStream(sim.url, `stream ${i}`, tokens)))
  const wall = performance.now() - started
  const expected = ((tokens - 1) * 1000) / tps
  const spans = results.map((r) => r.last - r.first).sort((a, b) => a - b)
  const median = spans[spans.length >> 1] ?? NaN
  t.comment(`wall ${wall.toFixed(0)} ms, span min ${spans[0]?.toFixed(1)} median ${median.toFixed(1)} max ${spans.at(-1)?.toFixed(1)} (ideal ${expected})`)
  t.ok(results.every((r) => r.tokens === tokens), 'all tokens arrived')
  // Client-side stamps: a first token read late (this client shares a loaded machine) shortens a
  // span; tokens dumped at once would make every span ~0. So the typical stream must keep the
  // pace, and none may be faster than a late first read can explain.
  t.ok(median >= expected * 0.8, 'the typical stream ran no faster than tokens_per_second')
  t.ok((spans[0] ?? 0) >= expected * 0.4, 'no stream had its tokens dumped at once')
  t.ok(median <= expected + 150, 'typical stream stays on schedule')
  t.ok((spans.at(-1) ?? Infinity) <= expected + 500, 'no stream drifted far behind')
  t.equal(sim.stats().generatedTokens, n * tokens)
})

t.test('--stall-after-tokens: the stream stops but keeps its slot until the client leaves', async (t) => {
  const sim = await startSim(t, { models: ['m'], slots: 1, ttftMs: 0, tokensPerSecond: 200, stallAfterTokens: 3 })
  const api = client(sim.url)
  const stream = await api.chat.completions.create({ model: 'm', messages: chat('stall'), max_tokens: 100, stream: true })
  const it = stream[Symbol.asyncIterator]()
  let content = 0
  while (content < 3) {
    const next = await it.next()
    if (next.done) break
    if ((next.value.choices[0]?.delta.content ?? '') !== '') content++
  }
  t.equal(content, 3)
  // Absence of tokens can only be observed over time: at 200 tok/s, 150 ms would carry ~30 more.
  const more = await Promise.race([it.next().then(() => 'token'), new Promise((r) => setTimeout(r, 150, 'silence'))])
  t.equal(more, 'silence', 'no token after the stall point')
  const slots = (await (await fetch(`${sim.url}/slots`)).json()) as { is_processing: boolean; next_token: { n_decoded: number } }[]
  t.match(slots[0], { is_processing: true, next_token: { n_decoded: 3 } })
  stream.controller.abort()
  await waitFor('stalled slot freed', async () => (await gauges(sim.url)).processing === 0, 1000)
})

t.test('--decode-slowdown slows every running request as the batch grows', async (t) => {
  const tps = 200
  const tokens = 61
  // A ttft lets both requests be admitted before tokens flow (this client shares a loaded machine).
  const sim = await startSim(t, { models: ['m'], slots: 4, ttftMs: 100, tokensPerSecond: tps, decodeSlowdown: 1 })
  const solo = ((tokens - 1) * 1000) / tps
  const pair = await Promise.all([timedStream(sim.url, 'a', tokens), timedStream(sim.url, 'b', tokens)])
  // Twice as long when both run the whole time; one that ran alone for a while is quicker, but a
  // stream without the slowdown takes `solo`: well under 1.5x.
  for (const r of pair) t.ok(r.last - r.first >= 1.5 * solo, `two running at slowdown 1 take about twice as long (${(r.last - r.first).toFixed(1)} ms, alone ${solo} ms)`)
})

t.test('--prefill-tokens-per-second makes long prompts wait longer for the first token', async (t) => {
  const sim = await startSim(t, { models: ['m'], ttftMs: 0, tokensPerSecond: 0, prefillTokensPerSecond: 1000 })
  const api = client(sim.url)
  const timed = async (prompt: string) => {
    const t0 = performance.now()
    const r = await api.chat.completions.create({ model: 'm', messages: chat(prompt), max_tokens: 1 })
    return { ms: performance.now() - t0, promptTokens: r.usage?.prompt_tokens ?? 0 }
  }
  const long = await timed('x'.repeat(800))
  t.ok(long.promptTokens >= 200)
  t.ok(long.ms >= long.promptTokens * 0.95, `${long.promptTokens} prompt tokens at 1000/s took ${long.ms.toFixed(1)} ms`)
  const short = await timed('x')
  t.ok(short.ms < long.ms / 2, 'a short prompt is much faster')
})

t.test('metrics exposition is well-formed and counts tokens', async (t) => {
  const sim = await startSim(t, { models: ['base', 'lora'], ttftMs: 0, tokensPerSecond: 0 })
  const api = client(sim.url)
  await api.chat.completions.create({ model: 'lora', messages: chat('count me'), max_tokens: 5 })
  await api.embeddings.create({ model: 'base', input: 'vec' })
  const res = await fetch(`${sim.url}/metrics`)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  const malformed = text
    .trimEnd()
    .split('\n')
    .filter((line) => !/^(# (HELP|TYPE) [a-z_:]+ .+|[a-z_:]+(\{[^}]*\})? -?[0-9.e+-]+)$/.test(line))
  t.same(malformed, [], 'every line is a comment or a sample')
  t.equal(metricValue(text, 'llamacpp:tokens_predicted_total'), 5)
  t.equal(metricValue(text, 'vllm:generation_tokens_total', 'model_name="base"'), 5, 'vLLM series carry the base model')
  t.ok((metricValue(text, 'llamacpp:prompt_tokens_total') ?? 0) > 0)
  t.equal(metricValue(text, 'vllm:time_to_first_token_seconds_count'), 1, 'one request produced a first token')
  t.equal(metricValue(text, 'vllm:request_success_total', VLLM_LENGTH), 1)
  t.equal(metricValue(text, 'meshd_sim_slots'), 4)
})

t.test('close() during a drain that cannot finish cuts what is left', async (t) => {
  const sim = await startSim(t, { models: ['m'], ttftMs: 0, tokensPerSecond: 100, stallAfterTokens: 1 })
  const api = client(sim.url)
  const stream = await api.chat.completions.create({ model: 'm', messages: chat('stuck'), stream: true })
  const it = stream[Symbol.asyncIterator]()
  // Everything it sends before it stalls: the role chunk, then its one token. Read both, so
  // a chunk still buffered in the client cannot pass for one sent after the cut.
  await it.next()
  await it.next()
  const drained = sim.drain()
  const health = await fetch(`${sim.url}/health`)
  t.equal(health.status, 503, 'draining refuses')
  t.equal(sim.stats().inflight, 1, 'the stalled request keeps the drain waiting')
  let settled = false
  void Promise.all([drained, sim.close()]).then(() => (settled = true))
  await waitFor('drain and close to resolve', () => settled, 1000)
  t.equal(sim.stats().inflight, 0)
  const rest = await it.next().then(
    (r) => (r.done ? 'ended' : 'more'),
    () => 'cut',
  )
  t.not(rest, 'more', 'the client stream was cut')
})
