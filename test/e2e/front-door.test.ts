/**
 * The front door end to end: three real daemons on loopback, each with a
 * simulated replica (one four times slower), driven by the official `openai`
 * client pointed at one node. Every request that another member serves
 * crosses the mesh over /meshd/infer/1 (no member exposes its replica).
 */
import t from 'tap'
import OpenAI from 'openai'
import { tempDir } from '../helpers/tmp.ts'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const sim = (tokensPerSecond: number) => ({ ttft_ms: 50, tokens_per_second: tokensPerSecond, max_tokens: 16 })

function replica (models: string[], tokensPerSecond: number) {
  return { models, slots: 4, command: 'sim', readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1, timeout_seconds: 2 }, sim: sim(tokensPerSecond) }
}

async function readyEverywhere (nodes: DaemonProcess[], n: number): Promise<void> {
  for (const d of nodes) {
    await waitFor(async () => (await d.status()).members.filter((m) => m.state === 'alive' && m.replica?.ready === true).length === n,
      { timeoutMs: 20_000, what: `${d.spec.name} to see ${n} ready replicas` })
  }
}

t.test('front door', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const fast1 = await DaemonProcess.start(t, root, { name: 'fast-1', swarmKeyFile, config: { replica: replica(['llama3'], 40), http: { listen: '127.0.0.1:0', queue_timeout: '20s', body_timeout: '1s' } } })
  const fast2 = await DaemonProcess.start(t, root, { name: 'fast-2', swarmKeyFile, config: { replica: replica(['llama3', 'tiny'], 40) } })
  const slow = await DaemonProcess.start(t, root, { name: 'slow', swarmKeyFile, config: { replica: replica(['llama3'], 10), http: { listen: '127.0.0.1:0', api_keys: ['secret-key'], queue_timeout: '1s', max_queue: 4 } } })
  await fast2.call('join', { addrs: [fast1.joinAddr] })
  await slow.call('join', { addrs: [fast2.joinAddr] })
  const all = [fast1, fast2, slow]
  await readyEverywhere(all, 3)
  const entry = fast1
  const client = new OpenAI({ baseURL: `${entry.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 })

  await t.test('plain and streamed chat completions through any node', async (t) => {
    for (const d of all) {
      const c = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: 'secret-key', maxRetries: 0 })
      const { data, response } = await c.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'hello' }] }).withResponse()
      t.equal(data.object, 'chat.completion')
      t.ok((data.choices[0]?.message.content ?? '').length > 0, `${d.spec.name}: an answer`)
      t.ok(all.some((x) => x.peerId === response.headers.get('x-meshd-served-by')), 'x-meshd-served-by names a member')
    }
    const { data: stream, response } = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'count' }], stream: true, max_tokens: 16 }).withResponse()
    t.equal(response.headers.get('x-meshd-served-by'), fast2.peerId, 'a model served only by another member crosses the mesh')
    const times: number[] = []
    let text = ''
    const start = performance.now()
    for await (const chunk of stream) {
      times.push(performance.now() - start)
      text += chunk.choices[0]?.delta.content ?? ''
    }
    t.ok(text.length > 0)
    t.ok(times.length >= 10, `token by token (${times.length} chunks)`)
    // 16 tokens at 40/s: ~400 ms between the first and the last chunk when nothing is buffered.
    t.ok(times.at(-1)! - times[0]! > 250, `the first chunk came ${Math.round(times.at(-1)! - times[0]!)} ms before the last`)
  })

  await t.test('bad input: OpenAI error objects with the right status', async (t) => {
    const post = (body: string | Uint8Array, path = '/v1/chat/completions') => fetch(`${entry.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    let r = await post('{"model": "llama3", "messages": [')
    t.equal(r.status, 400)
    t.match(await r.json(), { error: { type: 'invalid_request_error', code: 'invalid_json' } })
    r = await post(JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }))
    t.equal(r.status, 404)
    t.match(await r.json(), { error: { type: 'invalid_request_error', code: 'model_not_found', param: 'model' } })
    r = await post(JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }))
    t.equal(r.status, 400, 'missing model')
    r = await post(JSON.stringify({ model: 'llama3' }))
    t.equal(r.status, 400, 'missing messages')
    const big = new Uint8Array(20 * 1024 * 1024).fill(0x20)
    r = await post(big)
    t.equal(r.status, 413)
    t.match(await r.json(), { error: { code: 'request_too_large' } })
    t.ok(r.headers.get('x-meshd-served-by'), 'errors carry x-meshd-served-by too')
    const err = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof OpenAI.NotFoundError, 'the openai client surfaces it as a NotFoundError')
    const models = await client.models.list()
    t.same(models.data.map((m) => m.id).sort(), ['llama3', 'tiny'], 'GET /v1/models lists what the mesh serves')
  })

  await t.test('API keys, stalled bodies and saturation', async (t) => {
    const noKey = new OpenAI({ baseURL: `${slow.url}/v1`, apiKey: 'wrong', maxRetries: 0 })
    const err = await noKey.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'x' }] }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof OpenAI.AuthenticationError, 'a wrong key gets 401 on a node with http.api_keys')
    const bare = await fetch(`${slow.url}/v1/models`)
    t.equal(bare.status, 401, 'no key: 401')
    t.match(await bare.json(), { error: { type: 'authentication_error', code: 'invalid_api_key' } })

    // A body that stops arriving: 408 after http.body_timeout (1 s on fast-1).
    const { connect } = await import('node:net')
    const sock = connect(entry.httpPort, '127.0.0.1')
    sock.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":')
    const answer = await new Promise<string>((resolve) => { let s = ''; sock.on('data', (d) => { s += d.toString() }); sock.on('close', () => { resolve(s) }) })
    t.match(answer, /^HTTP\/1\.1 408 /, 'a stalled body times out with 408')
    t.match(answer, /"code":"body_timeout"/)

    // 'tiny' is served by fast-2 alone (4 slots); slow's entry queue holds 4 for 1 s.
    const sat = new OpenAI({ baseURL: `${slow.url}/v1`, apiKey: 'secret-key', maxRetries: 0 })
    const outcomes = await Promise.all(Array.from({ length: 14 }, async () => {
      try {
        const stream = await sat.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'long' }], stream: true, max_tokens: 120 })
        for await (const _ of stream) { /* drain */ }
        return 200
      } catch (e) {
        return (e as { status?: number }).status ?? 0
      }
    }))
    const rejected = await fetch(`${slow.url}/metrics`).then(async (r) => r.text())
    t.ok(outcomes.filter((s) => s === 429).length >= 4, `saturation answers 429 (${outcomes.join(',')})`)
    t.ok(outcomes.filter((s) => s === 200).length >= 4, 'what fits (a free slot each) is served')
    t.ok(outcomes.every((s) => s === 200 || s === 429), 'nothing else')
    t.match(rejected, /meshd_requests_rejected_total\{reason="saturated"\} [1-9]/, 'rejections are counted by reason')
  })

  await t.test('24 concurrent streams: the slow member serves clearly fewer requests', async (t) => {
    const served = new Map<string, number>()
    const until = performance.now() + 8000
    let failures = 0
    await Promise.all(Array.from({ length: 24 }, async () => {
      while (performance.now() < until) {
        try {
          const { data: stream, response } = await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'go' }], stream: true, max_tokens: 8 }).withResponse()
          for await (const _ of stream) { /* drain */ }
          const by = response.headers.get('x-meshd-served-by') ?? '?'
          served.set(by, (served.get(by) ?? 0) + 1)
        } catch {
          failures++
        }
      }
    }))
    const f1 = served.get(fast1.peerId) ?? 0
    const f2 = served.get(fast2.peerId) ?? 0
    const s = served.get(slow.peerId) ?? 0
    t.comment(`served: fast-1 ${f1}, fast-2 ${f2}, slow ${s}`)
    t.equal(failures, 0, 'no request failed')
    t.ok(s > 0, 'the slow member still takes some traffic')
    t.ok(s < 0.6 * Math.min(f1, f2), `slow (${s}) well below each fast member (${f1}, ${f2})`)
  })

  await t.test('a client that aborts a stream frees the far replica\'s slot within a second', async (t) => {
    const ac = new AbortController()
    const stream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'long' }], stream: true, max_tokens: 4000 }, { signal: ac.signal })
    let chunks = 0
    await waitFor(async () => (await fast2.status()).members.find((m) => m.id === fast2.peerId)?.replica?.inflight === 1,
      { timeoutMs: 5000, what: 'the far replica to report the request in flight' })
    try {
      for await (const _ of stream) { if (++chunks === 3) ac.abort() }
    } catch {}
    const simMetrics = async (): Promise<number> => {
      const text = await fast2.metricsText()
      const m = /^meshd_replica_inflight (\d+)/m.exec(text)
      return Number(m?.[1] ?? -1)
    }
    const { ms } = await waitFor(async () => (await simMetrics()) === 0 && (await fast2.status()).members.find((m) => m.id === fast2.peerId)?.replica?.inflight === 0,
      { timeoutMs: 3000, intervalMs: 50, what: 'inflight back to 0 at the serving member' })
    // The wait's 3 s limit is the check (about a second for the slot, plus a heartbeat or two for status).
    t.pass(`slot freed and reported ${Math.round(ms)} ms after the abort`)
  })
})
