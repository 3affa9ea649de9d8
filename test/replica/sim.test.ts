// The simulator on the wire, driven by the official OpenAI SDK: what a client
// or the daemon's proxy sees from a real engine.

import t from 'tap'
import OpenAI from 'openai'
import { chat, client, collect, startSim, waitFor } from './sim-helpers.ts'

t.test('models listing names the served models and says it is a simulator', async (t) => {
  const sim = await startSim(t, { models: ['llama3', 'other'] })
  const models = await client(sim.url).models.list()
  t.same(
    models.data.map((m) => [m.id, m.object, m.owned_by]),
    [
      ['llama3', 'model', 'meshd-sim'],
      ['other', 'model', 'meshd-sim'],
    ],
  )
  const raw = (await (await fetch(`${sim.url}/v1/models`)).json()) as { meshd_simulator?: unknown; data: { meshd_simulator?: unknown }[] }
  t.equal(raw.meshd_simulator, true, 'listing is flagged as a simulator')
  t.ok(raw.data.every((m) => m.meshd_simulator === true), 'every entry is flagged')
  const one = await client(sim.url).models.retrieve('other')
  t.equal(one.id, 'other')
  const health = await fetch(`${sim.url}/health`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok' })
})

t.test('plain chat completion: shape, usage, deterministic text', async (t) => {
  const sim = await startSim(t, { models: ['llama3'], ttftMs: 0, tokensPerSecond: 0 })
  const api = client(sim.url)
  const a = await api.chat.completions.create({ model: 'llama3', messages: chat('Say something about meshes.'), max_tokens: 7 })
  t.match(a.id, /^chatcmpl-/)
  t.equal(a.object, 'chat.completion')
  t.equal(a.model, 'llama3')
  t.type(a.created, 'number')
  const choice = a.choices[0]
  t.equal(choice?.message.role, 'assistant')
  t.equal(choice?.finish_reason, 'length')
  t.equal(choice?.message.content?.split(' ').length, 7, 'one word per token')
  t.equal(a.usage?.completion_tokens, 7)
  t.ok((a.usage?.prompt_tokens ?? 0) > 0)
  t.equal(a.usage?.total_tokens, (a.usage?.prompt_tokens ?? 0) + 7)

  const again = await api.chat.completions.create({ model: 'llama3', messages: chat('Say something about meshes.'), max_tokens: 7 })
  t.equal(again.choices[0]?.message.content, choice?.message.content, 'same prompt, same text')
  t.not(again.id, a.id, 'ids are unique')
  const other = await api.chat.completions.create({ model: 'llama3', messages: chat('Something else entirely.'), max_tokens: 7 })
  t.not(other.choices[0]?.message.content, choice?.message.content, 'different prompt, different text')

  const longer = await api.chat.completions.create({ model: 'llama3', messages: chat('x'.repeat(400)), max_completion_tokens: 3 })
  t.equal(longer.usage?.completion_tokens, 3, 'max_completion_tokens honoured')
  t.ok((longer.usage?.prompt_tokens ?? 0) >= 100, 'prompt tokens grow with the prompt (~4 chars/token)')
  const dflt = await api.chat.completions.create({ model: 'llama3', messages: chat('default length') })
  t.equal(dflt.usage?.completion_tokens, 64, 'default is --max-tokens')
})

t.test('streamed chat: role first, one chunk per token, paced at tokens_per_second', async (t) => {
  const tps = 100
  const tokens = 21
  const ttftMs = 40
  const sim = await startSim(t, { models: ['llama3'], ttftMs, tokensPerSecond: tps })
  const api = client(sim.url)
  const sent = performance.now()
  const stream = await api.chat.completions.create({
    model: 'llama3',
    messages: chat('Stream me a story.'),
    max_tokens: tokens,
    stream: true,
    stream_options: { include_usage: true },
  })
  const chunks = await collect(stream)

  const first = chunks[0]
  t.equal(first?.chunk.choices[0]?.delta.role, 'assistant', 'first chunk carries the role')
  t.equal(first?.chunk.object, 'chat.completion.chunk')
  t.match(first?.chunk.id ?? '', /^chatcmpl-/)
  t.ok(chunks.every((c) => c.chunk.id === first?.chunk.id), 'one id for the whole stream')
  const content = chunks.filter((c) => typeof c.chunk.choices[0]?.delta.content === 'string' && c.chunk.choices[0]?.delta.content !== '')
  t.equal(content.length, tokens, 'one chunk per token')
  const finish = chunks.filter((c) => c.chunk.choices[0]?.finish_reason)
  t.equal(finish.length, 1)
  t.equal(finish[0]?.chunk.choices[0]?.finish_reason, 'length')
  const usage = chunks.at(-1)?.chunk
  t.same(usage?.choices, [], 'usage chunk has no choices')
  t.equal(usage?.usage?.completion_tokens, tokens)

  const firstToken = content[0]?.at ?? 0
  const lastToken = content.at(-1)?.at ?? 0
  const expected = ((tokens - 1) * 1000) / tps
  t.ok(firstToken - sent >= ttftMs - 2, `first token after ttft (${(firstToken - sent).toFixed(1)} ms)`)
  t.ok(lastToken - firstToken >= expected * 0.9, `tokens paced: ${(lastToken - firstToken).toFixed(1)} ms >= ${expected * 0.9}`)
  t.ok(lastToken - firstToken <= expected + 400, `no stalls: ${(lastToken - firstToken).toFixed(1)} ms <= ${expected + 400}`)

  const text = content.map((c) => c.chunk.choices[0]?.delta.content).join('')
  const plain = await api.chat.completions.create({ model: 'llama3', messages: chat('Stream me a story.'), max_tokens: tokens })
  t.equal(text, plain.choices[0]?.message.content, 'streamed text equals the plain answer')
})

t.test('text completions, plain and streamed', async (t) => {
  const sim = await startSim(t, { models: ['llama3'], ttftMs: 0, tokensPerSecond: 2000 })
  const api = client(sim.url)
  const plain = await api.completions.create({ model: 'llama3', prompt: 'Once upon a time', max_tokens: 9 })
  t.match(plain.id, /^cmpl-/)
  t.equal(plain.object, 'text_completion')
  t.equal(plain.choices[0]?.finish_reason, 'length')
  t.equal(plain.usage?.completion_tokens, 9)
  t.equal(plain.usage?.prompt_tokens, 4, '16 chars ~ 4 tokens')

  const stream = await api.completions.create({ model: 'llama3', prompt: 'Once upon a time', max_tokens: 9, stream: true })
  const chunks = await collect(stream)
  const pieces = chunks.map((c) => c.chunk.choices[0]?.text ?? '').filter((s) => s !== '')
  t.equal(pieces.length, 9)
  t.equal(pieces.join(''), plain.choices[0]?.text)
  t.equal(chunks.at(-1)?.chunk.choices[0]?.finish_reason, 'length')

  const ids = await api.completions.create({ model: 'llama3', prompt: [1, 2, 3, 4, 5], max_tokens: 2 })
  t.equal(ids.usage?.prompt_tokens, 5, 'a token-id prompt counts its ids')
  await t.rejects(api.completions.create({ model: 'llama3', prompt: ['a', 'b'], max_tokens: 2 }), { status: 400, code: 'unsupported_value', param: 'prompt' })
})

t.test('stop sequences cut the text before the stop, finish_reason stop', async (t) => {
  const sim = await startSim(t, { models: ['m'], ttftMs: 0, tokensPerSecond: 0 })
  const api = client(sim.url)
  const full = (await api.chat.completions.create({ model: 'm', messages: chat('stop test'), max_tokens: 40 })).choices[0]?.message.content ?? ''
  const words = full.split(' ')
  const stop = ` ${words[5]}`
  const expected = full.slice(0, full.indexOf(stop))
  const cut = await api.chat.completions.create({ model: 'm', messages: chat('stop test'), max_tokens: 40, stop: [stop] })
  t.equal(cut.choices[0]?.message.content, expected)
  t.equal(cut.choices[0]?.finish_reason, 'stop')
  const stream = await api.chat.completions.create({ model: 'm', messages: chat('stop test'), max_tokens: 40, stop, stream: true })
  const chunks = await collect(stream)
  t.equal(chunks.map((c) => c.chunk.choices[0]?.delta.content ?? '').join(''), expected)
  t.equal(chunks.at(-1)?.chunk.choices[0]?.finish_reason, 'stop')
  const none = await api.chat.completions.create({ model: 'm', messages: chat('stop test'), max_tokens: 40, stop: 'no such text' })
  t.equal(none.choices[0]?.finish_reason, 'length', 'a stop that never occurs changes nothing')
})

t.test('embeddings: deterministic unit vectors, base64 and float', async (t) => {
  const sim = await startSim(t, { models: ['emb'], ttftMs: 0 })
  const api = client(sim.url)
  // The SDK asks for base64 by default and decodes it.
  const res = await api.embeddings.create({ model: 'emb', input: ['alpha', 'beta'] })
  t.equal(res.object, 'list')
  t.equal(res.data.length, 2)
  const [a, b] = res.data.map((d) => d.embedding)
  t.equal(a?.length, 16, 'default dimension')
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0))
  t.ok(Math.abs(norm(a ?? []) - 1) < 1e-5, 'unit length')
  t.notSame(a, b, 'different inputs, different vectors')
  t.ok((res.usage.prompt_tokens ?? 0) > 0)
  const float = await api.embeddings.create({ model: 'emb', input: 'alpha', encoding_format: 'float' })
  t.same(float.data[0]?.embedding, a, 'float and base64 encodings agree; same input, same vector')
  const small = await api.embeddings.create({ model: 'emb', input: 'alpha', dimensions: 8, encoding_format: 'float' })
  t.equal(small.data[0]?.embedding.length, 8)
  await t.rejects(api.embeddings.create({ model: 'nope', input: 'x' }), { status: 404, code: 'model_not_found' })
})

t.test('OpenAI error objects: 404 model and route, 400 bad requests', async (t) => {
  const sim = await startSim(t, { models: ['llama3'], ttftMs: 0, tokensPerSecond: 0 })
  const api = client(sim.url)
  const notFound = await api.chat.completions.create({ model: 'gpt-x', messages: chat('hi') }).catch((e: unknown) => e)
  t.ok(notFound instanceof OpenAI.NotFoundError, 'SDK raises NotFoundError')
  t.match(notFound, { status: 404, code: 'model_not_found', type: 'invalid_request_error', param: 'model' })

  await t.rejects(api.chat.completions.create({ model: 'llama3', messages: chat('hi'), n: 2 }), { status: 400, code: 'unsupported_value', param: 'n', type: 'invalid_request_error' })
  await t.rejects(api.chat.completions.create({ model: 'llama3', messages: [] }), { status: 400, code: 'invalid_value', param: 'messages' })
  await t.rejects(api.chat.completions.create({ model: 'llama3', messages: chat('hi'), max_tokens: -1 }), { status: 400, code: 'invalid_value', param: 'max_tokens' })

  const post = (path: string, body: string) => fetch(`${sim.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const badJson = await post('/v1/chat/completions', '{"model":')
  t.equal(badJson.status, 400)
  t.match(await badJson.json(), { error: { message: String, type: 'invalid_request_error', code: 'invalid_json', param: null } })
  const missing = await post('/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}]}')
  t.equal(missing.status, 400)
  t.match(await missing.json(), { error: { code: 'missing_required_parameter', param: 'model' } })
  const route = await post('/v1/nothing-here', '{}')
  t.equal(route.status, 404)
  t.match(await route.json(), { error: { type: 'invalid_request_error', code: 'unknown_url', param: null } })
  const method = await fetch(`${sim.url}/v1/chat/completions`)
  t.equal(method.status, 405)
  t.equal(sim.stats().inflight, 0, 'rejected requests never reach the engine')
})

t.test('--fail-rate answers that fraction with 500 before any byte', async (t) => {
  const sim = await startSim(t, { models: ['m'], ttftMs: 0, tokensPerSecond: 0, failRate: 0.5 })
  const api = client(sim.url)
  const outcomes: (number | 'ok')[] = []
  for (let i = 0; i < 6; i++) {
    outcomes.push(
      await api.chat.completions.create({ model: 'm', messages: chat('x'), max_tokens: 1 }).then(
        () => 'ok' as const,
        (e: unknown) => (e instanceof OpenAI.APIError ? (e.status ?? 0) : -1),
      ),
    )
  }
  t.equal(outcomes.filter((o) => o === 500).length, 3, `half fail: ${outcomes.join(',')}`)
  t.equal(outcomes.filter((o) => o === 'ok').length, 3)
  const all = await startSim(t, { models: ['m'], failRate: 1 })
  await t.rejects(client(all.url).chat.completions.create({ model: 'm', messages: chat('x'), stream: true }), {
    status: 500,
    type: 'server_error',
    code: 'simulated_failure',
  })
})

t.test('--ready-after-ms: 503 until ready, then serving', async (t) => {
  const sim = await startSim(t, { models: ['m'], ttftMs: 0, tokensPerSecond: 0, readyAfterMs: 300 })
  const early = await fetch(`${sim.url}/health`)
  t.equal(early.status, 503)
  t.same(await early.json(), { status: 'loading' })
  await t.rejects(client(sim.url).chat.completions.create({ model: 'm', messages: chat('x'), max_tokens: 1 }), { status: 503, code: 'engine_loading' })
  await waitFor('health to turn 200', async () => (await fetch(`${sim.url}/health`)).status === 200, 3000)
  const ok = await client(sim.url).chat.completions.create({ model: 'm', messages: chat('x'), max_tokens: 1 })
  t.equal(ok.usage?.completion_tokens, 1)
})
