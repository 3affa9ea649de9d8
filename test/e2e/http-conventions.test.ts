/**
 * HTTP conventions of the front door, end to end: two real daemons on
 * loopback whose replicas are one small HTTP server in this test standing in
 * for an engine (it records the `x-request-id` each request arrived with,
 * answers with `usage` as vLLM does, and echoes an id of its own that must
 * not reach the client). `a` serves `local-model` and `meta-llama/Llama-3-8B`
 * itself; `far-model` and `qwen2:7b` only `b` serves, so requests for them
 * at `a` cross the mesh over /meshd/infer/1. Driven with the official
 * `openai` client and plain fetch; the access log is read from `a`'s stdout.
 */
import t from 'tap'
import OpenAI from 'openai'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tempDir, type Teardown } from '../helpers/tmp.ts'
import { DaemonProcess, startJoined, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import type { LogLine } from '../../daemon/localmesh/meshd-process.ts'

const USAGE = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }

/** The stand-in engine: what request ids it saw, per model. */
async function standIn (t: Teardown): Promise<{ url: string, seen: Array<{ model: string, id: string | undefined }> }> {
  const seen: Array<{ model: string, id: string | undefined }> = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') { res.end('{}'); return }
    if (req.method !== 'POST') { res.writeHead(404).end(); return }
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString()) as { model: string, stream?: boolean, stream_options?: { include_usage?: boolean }, max_tokens?: number }
      const id = req.headers['x-request-id'] as string | undefined
      seen.push({ model: body.model, id })
      const base = { id: 'chatcmpl-1', created: 1, model: body.model }
      if (body.stream !== true) {
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'replica-own-id' })
        res.end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: `seen ${id ?? 'nothing'}` }, finish_reason: 'stop' }], usage: USAGE }))
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'replica-own-id' })
      const n = body.max_tokens ?? 3
      const withUsage = body.stream_options?.include_usage === true
      let i = 0
      const timer = setInterval(() => {
        if (res.destroyed) { clearInterval(timer); return }
        if (i < n) {
          res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `t${i} ` }, finish_reason: null }], ...(withUsage ? { usage: null } : {}) })}\n\n`)
          i++
          return
        }
        clearInterval(timer)
        if (withUsage) res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage: { ...USAGE, completion_tokens: n, total_tokens: USAGE.prompt_tokens + n } })}\n\n`)
        res.end('data: [DONE]\n\n')
      }, 20)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

function replica (models: string[], url: string) {
  return { models, slots: 4, url, readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1, timeout_seconds: 2 } }
}

/** A daemon's access-log line for a request id, once it is written; fails the test if there are two. */
async function accessLine (t: { equal: (a: unknown, b: unknown, m: string) => void }, d: DaemonProcess, id: string): Promise<LogLine> {
  const { value } = await waitFor(() => d.logs.find((l) => l.msg === 'request' && l.request_id === id), { timeoutMs: 5000, what: `the access line of ${id}` })
  t.equal(d.logs.filter((l) => l.msg === 'request' && l.request_id === id).length, 1, `one line for ${id}`)
  return value
}

t.test('HTTP conventions', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const engine = await standIn(t)
  const [a, b] = await startJoined(t, root, [
    { name: 'a', swarmKeyFile, config: { replica: replica(['local-model', 'meta-llama/Llama-3-8B'], engine.url) } },
    { name: 'b', swarmKeyFile, config: { replica: replica(['far-model', 'qwen2:7b'], engine.url) } }
  ], 'chain')
  await waitFor(async () => (await a!.status()).members.filter((m) => m.state === 'alive' && m.replica?.ready === true).length === 2,
    { timeoutMs: 20_000, what: 'a to see both replicas ready' })
  const entry = a!
  const far = b!
  const client = new OpenAI({ baseURL: `${entry.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 })

  await t.test('GET /v1/models/{id} with the openai client', async (t) => {
    for (const id of ['local-model', 'meta-llama/Llama-3-8B', 'qwen2:7b', 'far-model']) {
      const m = await client.models.retrieve(id)
      t.match(m, { id, object: 'model', owned_by: 'meshd' }, `retrieve(${JSON.stringify(id)})`)
      t.type(m.created, 'number')
    }
    const listed = await client.models.list()
    const created = listed.data.find((m) => m.id === 'far-model')?.created
    t.equal((await client.models.retrieve('far-model')).created, created, 'created is the same in the list and the object')
    const err = await client.models.retrieve('no-such-model').then(() => null, (e: unknown) => e)
    t.ok(err instanceof OpenAI.NotFoundError, 'an unknown model: NotFoundError')
    t.match((err as InstanceType<typeof OpenAI.NotFoundError>).error, { type: 'invalid_request_error', code: 'model_not_found', param: 'model' })
    // Not encoded, as typed into curl; matched exactly.
    let r = await fetch(`${entry.url}/v1/models/meta-llama/Llama-3-8B`)
    t.equal(r.status, 200, 'an id with a slash, not encoded')
    t.match(await r.json(), { id: 'meta-llama/Llama-3-8B', object: 'model' })
    r = await fetch(`${entry.url}/v1/models/qwen2%3A7b`)
    t.equal(r.status, 200, 'an id with an encoded colon')
    r = await fetch(`${entry.url}/v1/models/META-LLAMA%2Fllama-3-8b`)
    t.equal(r.status, 404, 'case matters, as at OpenAI')
    r = await fetch(`${entry.url}/v1/models/bad%zz`)
    t.equal(r.status, 400, 'broken percent-encoding')
    t.match(await r.json(), { error: { code: 'invalid_model_id' } })
  })

  await t.test('405 carries Allow; HEAD and OPTIONS', async (t) => {
    const cases: Array<[string, string, string]> = [
      ['GET', '/v1/chat/completions', 'POST, OPTIONS'],
      ['PUT', '/v1/embeddings', 'POST, OPTIONS'],
      ['POST', '/v1/models', 'GET, HEAD, OPTIONS'],
      ['DELETE', '/v1/models/local-model', 'GET, HEAD, OPTIONS'],
      ['POST', '/health', 'GET, HEAD, OPTIONS'],
      ['POST', '/metrics', 'GET, HEAD, OPTIONS']
    ]
    for (const [method, path, allow] of cases) {
      const r = await fetch(`${entry.url}${path}`, { method })
      t.equal(r.status, 405, `${method} ${path}: 405`)
      t.equal(r.headers.get('allow'), allow, `${method} ${path}: Allow`)
      t.match(await r.json(), { error: { type: 'invalid_request_error', code: 'method_not_allowed' } })
    }
    for (const [path, allow] of [['/v1/chat/completions', 'POST, OPTIONS'], ['/v1/models', 'GET, HEAD, OPTIONS'], ['/health', 'GET, HEAD, OPTIONS']] as const) {
      const r = await fetch(`${entry.url}${path}`, { method: 'OPTIONS' })
      t.equal(r.status, 204, `OPTIONS ${path}: 204`)
      t.equal(r.headers.get('allow'), allow)
    }
    for (const path of ['/health', '/metrics', '/v1/models', '/v1/models/far-model']) {
      const r = await fetch(`${entry.url}${path}`, { method: 'HEAD' })
      t.equal(r.status, 200, `HEAD ${path}: 200`)
      t.equal(await r.text(), '', 'no body')
    }
    const r = await fetch(`${entry.url}/v1/nothing-here`)
    t.equal(r.status, 404, 'an unknown path is still 404')
  })

  await t.test('x-request-id: echoed, generated, and forwarded to the replica on both paths', async (t) => {
    const chat = (model: string, headers: Record<string, string> = {}) => fetch(`${entry.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] })
    })
    for (const [model, servedBy] of [['local-model', entry.peerId], ['far-model', far.peerId]] as const) {
      const given = `trace-${model}:${Date.now()}/1`
      let r = await chat(model, { 'x-request-id': given })
      t.equal(r.status, 200)
      t.equal(r.headers.get('x-meshd-served-by'), servedBy, `${model}: served by ${servedBy === entry.peerId ? 'a, locally' : 'b, over the mesh'}`)
      t.equal(r.headers.get('x-request-id'), given, `${model}: the client's id is echoed (not the replica's own)`)
      t.equal(engine.seen.at(-1)?.id, given, `${model}: the replica got the client's id`)
      await r.body?.cancel()

      r = await chat(model)
      const made = r.headers.get('x-request-id') ?? ''
      t.match(made, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `${model}: an id is made when the client sends none`)
      t.equal(engine.seen.at(-1)?.id, made, `${model}: and the replica got it`)
      await r.body?.cancel()

      // Too long for the mesh's request head (128) or with spaces: replaced, and the request still served.
      for (const insane of ['x'.repeat(200), 'two words']) {
        r = await chat(model, { 'x-request-id': insane })
        t.equal(r.status, 200, `${model}: served despite an unusable id`)
        const replaced = r.headers.get('x-request-id') ?? ''
        t.match(replaced, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `${model}: an unusable id is replaced`)
        t.equal(engine.seen.at(-1)?.id, replaced)
        await r.body?.cancel()
      }
    }
    const { data, response } = await client.chat.completions.create({ model: 'far-model', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-request-id': 'sdk-req-1' } }).withResponse()
    t.equal(response.headers.get('x-request-id'), 'sdk-req-1', 'through the openai client')
    t.equal(data.choices[0]?.message.content, 'seen sdk-req-1', 'the replica saw it')
    for (const [method, path] of [['GET', '/health'], ['GET', '/metrics'], ['GET', '/nope'], ['POST', '/v1/models']]) {
      const r = await fetch(`${entry.url}${path}`, { method, headers: { 'x-request-id': 'any-1' } })
      t.equal(r.headers.get('x-request-id'), 'any-1', `${method} ${path} echoes it too`)
      await r.body?.cancel()
    }
  })

  await t.test('one access-log line per request: plain, streamed, error, aborted', async (t) => {
    const names = { entry: 'a', entry_peer: entry.peerId }
    await client.chat.completions.create({ model: 'far-model', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-request-id': 'log-plain' } })
    t.match(await accessLine(t, entry, 'log-plain'), {
      level: 'info', svc: 'access', node: 'a', method: 'POST', path: '/v1/chat/completions', model: 'far-model', stream: false, status: 200,
      ...names, served_by: 'b', served_by_peer: far.peerId, ...USAGE
    })

    const stream = await client.chat.completions.create({ model: 'local-model', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true }, max_tokens: 5 }, { headers: { 'x-request-id': 'log-stream' } })
    for await (const _ of stream) { /* drain */ }
    const s = await accessLine(t, entry, 'log-stream')
    t.match(s, { status: 200, stream: true, model: 'local-model', served_by: 'a', served_by_peer: entry.peerId, prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 }, 'tokens from the stream\'s final chunk')
    t.ok(typeof s.ttft_ms === 'number' && typeof s.duration_ms === 'number' && (s.ttft_ms) < (s.duration_ms), `ttft ${String(s.ttft_ms)} ms before the end at ${String(s.duration_ms)} ms`)
    t.ok((s.duration_ms as number) >= 100, 'six chunks 20 ms apart: the duration covers the stream')

    const far2 = await client.chat.completions.create({ model: 'qwen2:7b', messages: [{ role: 'user', content: 'x' }], stream: true, max_tokens: 2 }, { headers: { 'x-request-id': 'log-stream-no-usage' } })
    for await (const _ of far2) { /* drain */ }
    const n = await accessLine(t, entry, 'log-stream-no-usage')
    t.match(n, { status: 200, stream: true, served_by: 'b' })
    t.notOk('prompt_tokens' in n, 'no usage reported: no token counts')

    await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-request-id': 'log-error' } }).catch(() => {})
    const e = await accessLine(t, entry, 'log-error')
    t.match(e, { status: 404, error: 'model_not_found', model: 'no-such-model', ...names })
    t.notOk('served_by' in e, 'nobody served it')

    const ac = new AbortController()
    const long = await client.chat.completions.create({ model: 'far-model', messages: [{ role: 'user', content: 'x' }], stream: true, max_tokens: 200 }, { headers: { 'x-request-id': 'log-abort' }, signal: ac.signal })
    let chunks = 0
    try { for await (const _ of long) if (++chunks === 2) ac.abort() } catch {}
    t.match(await accessLine(t, entry, 'log-abort'), { status: 200, aborted: true, served_by: 'b' }, 'a client abort is logged once, at the end')
  })
})
