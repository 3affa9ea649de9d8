/**
 * The front door against hostile and careless requests, on a real daemon
 * (sim replica) over real sockets: the official `openai` client where it
 * applies, raw sockets for what no client would send.
 * - bodies nested deeper than 128 levels get 400 before any parse, small and
 *   large (the worker's path), and a 10 MB `[[[[...` of depth 10⁷ too;
 * - max_tokens / max_completion_tokens above http.max_tokens (or the model's
 *   http.max_tokens_by_model) get 400 with the param named;
 * - `Authorization: bearer` in any case is the Bearer scheme;
 * - a declared Content-Length above http.max_body_bytes gets 413 before the
 *   body is read (and with Expect: 100-continue, without a 100 first);
 * - the 404 for an unknown model echoes at most 256 characters of its name;
 * - past http.max_connections, new connections get 503 and /health says so;
 * - an idle admin-socket connection is closed after admin.idle_timeout.
 */
import t from 'tap'
import OpenAI from 'openai'
import { connect, type Socket } from 'node:net'
import { tempDir } from '../helpers/tmp.ts'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const KEY = 'sk-hostile-test'

function replica () {
  return { models: ['sim', 'sim-small'], slots: 4, command: 'sim', readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1, timeout_seconds: 2 }, sim: { ttft_ms: 0, tokens_per_second: 5000, max_tokens: 4 } }
}

/** Sends `head` (and `body`) on a raw socket; resolves with what came back before the server closed or `untilText` appeared. */
function raw (port: number, head: string, opts: { body?: Buffer, untilText?: string, timeoutMs?: number } = {}): Promise<{ text: string, closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let text = ''
    const done = (closed: boolean): void => { clearTimeout(timer); s.destroy(); resolve({ text, closed }) }
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer within ${opts.timeoutMs ?? 10_000} ms; got ${JSON.stringify(text.slice(0, 200))}`)) }, opts.timeoutMs ?? 10_000)
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      if (opts.untilText !== undefined && text.includes(opts.untilText)) done(false)
    })
    s.on('error', () => {})
    s.on('close', () => { done(true) })
    s.write(head)
    if (opts.body !== undefined) s.write(opts.body)
  })
}

function post (port: number, path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers }, body })
}

function nested (depth: number, filler = 0): string {
  return JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'x'.repeat(filler) }] }).slice(0, -1) + `,"extra":${'['.repeat(depth)}${']'.repeat(depth)}}`
}

t.test('hostile requests at the front door', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const d = await DaemonProcess.start(t, root, {
    name: 'door',
    swarmKeyFile,
    config: {
      http: { listen: '127.0.0.1:0', api_keys: [KEY], max_body_bytes: 12 * 1024 * 1024, body_timeout: '60s', max_tokens: 50, max_tokens_by_model: { 'sim-small': 10 }, max_connections: 40 },
      admin: { socket: `${root}/door/admin.sock`, idle_timeout: '1s' },
      replica: replica()
    }
  })
  const port = d.httpPort
  await waitFor(async () => (await fetch(`${d.url}/health`)).status === 200, { timeoutMs: 20_000, what: 'a ready replica' })
  const client = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: KEY, maxRetries: 0 })

  t.test('nesting deeper than 128 is refused before the parse; shallower bodies are served', async (t) => {
    for (const [what, body] of [['small', nested(129)], ['large (worker)', nested(129, 40_000)]] as const) {
      const res = await post(port, '/v1/chat/completions', body)
      const err = (await res.json() as { error: { type: string, code: string, message: string } }).error
      t.equal(res.status, 400, `${what}: depth 129 gets 400`)
      t.equal(err.type, 'invalid_request_error')
      t.match(err.message, /nested more than 128 levels/)
    }
    for (const [what, body] of [['small', nested(120)], ['large (worker)', nested(120, 40_000)]] as const) {
      const res = await post(port, '/v1/chat/completions', body)
      t.equal(res.status, 200, `${what}: depth 120 is served`)
      await res.arrayBuffer()
    }
    const deep = Buffer.from('['.repeat(10_000_000))
    const res = await post(port, '/v1/chat/completions', deep)
    t.equal(res.status, 400, '10 MB of [[[[ gets 400')
    t.match((await res.json() as { error: { message: string } }).error.message, /nested more than 128/)
    const bad = await post(port, '/v1/chat/completions', '{"model":"sim","messages":[1],' + '"k":1,'.repeat(5000))
    t.equal(bad.status, 400, 'a large body that is not JSON gets 400 from the worker')
    t.match((await bad.json() as { error: { code: string } }).error.code, 'invalid_json')
  })

  t.test('max_tokens above the limit: 400 naming the param', async (t) => {
    const ok = await client.chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 50 })
    t.ok(ok.choices.length > 0, 'at the limit: served')
    const over = await client.chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 51 }).then(() => null, (e: unknown) => e)
    t.ok(over instanceof OpenAI.BadRequestError, 'max_tokens 51 > 50: BadRequestError')
    const e = over as InstanceType<typeof OpenAI.BadRequestError>
    t.equal(e.type, 'invalid_request_error')
    t.equal(e.param, 'max_tokens')
    t.match(e.message, /above this mesh's limit of 50/)
    const small = await client.chat.completions.create({ model: 'sim-small', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 11 }).then(() => null, (e: unknown) => e) as InstanceType<typeof OpenAI.BadRequestError>
    t.equal(small?.status, 400, 'the per-model limit (10) applies to sim-small')
    t.equal(small.param, 'max_completion_tokens')
    const huge = await client.completions.create({ model: 'sim', prompt: 'hi', max_tokens: 1_000_000 }).then(() => null, (e: unknown) => e) as InstanceType<typeof OpenAI.BadRequestError>
    t.equal(huge?.status, 400, '/v1/completions with max_tokens 10⁶: 400')
  })

  t.test('the Bearer scheme in any case', async (t) => {
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      const res = await post(port, '/v1/chat/completions', JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] }), { authorization: `${scheme} ${KEY}` })
      t.equal(res.status, 200, `${scheme}: accepted`)
      await res.arrayBuffer()
    }
    const res = await post(port, '/v1/chat/completions', '{}', { authorization: `Basic ${KEY}` })
    t.equal(res.status, 401, 'another scheme: 401')
    await res.arrayBuffer()
  })

  t.test('a declared Content-Length over the limit: 413 before the body', async (t) => {
    const head = (extra = ''): string => `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${20 * 1024 * 1024}\r\n${extra}\r\n`
    // The body timeout is 60 s: an answer within 10 s is the early one.
    const early = await raw(port, head(), { untilText: '}}' })
    t.match(early.text, /^HTTP\/1\.1 413 /, '413 with no body sent')
    t.match(early.text, /request_too_large/)
    const cont = await raw(port, head('Expect: 100-continue\r\n'))
    t.match(cont.text, /^HTTP\/1\.1 413 /, 'Expect: 100-continue: 413 and no 100 Continue')
    t.ok(cont.closed, 'and the connection is closed (the body will not come)')
    // A client that sends the body anyway still reads the 413 and can go on.
    const sent = await raw(port, head(), { body: Buffer.alloc(20 * 1024 * 1024, 0x20), untilText: 'HTTP/1.1 413' })
    t.match(sent.text, /^HTTP\/1\.1 413 /, 'sending the body anyway: the 413')
    const small = await raw(port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 13\r\nExpect: 100-continue\r\n\r\n`, { untilText: '100 Continue' })
    t.match(small.text, /^HTTP\/1\.1 100 Continue/, 'a body within the limit is asked for with 100 Continue')
  })

  t.test('the 404 for an unknown model echoes at most 256 characters of the name', async (t) => {
    const name = 'm'.repeat(1024 * 1024)
    const res = await post(port, '/v1/chat/completions', JSON.stringify({ model: name, messages: [{ role: 'user', content: 'hi' }] }))
    const text = await res.text()
    t.equal(res.status, 404)
    t.ok(text.length < 1000, `the answer is short (${text.length} bytes)`)
    t.match(text, /truncated: 1048576 characters/)
    const get = await fetch(`${d.url}/v1/models/${'n'.repeat(8000)}`, { headers: { authorization: `Bearer ${KEY}` } })
    const gtext = await get.text()
    t.equal(get.status, 404)
    t.ok(gtext.length < 1000, `GET /v1/models/{8000 chars}: short (${gtext.length} bytes)`)
    t.match(gtext, /truncated: 8000 characters/)
  })

  t.test('past http.max_connections: 503 for new connections, /health says so', async (t) => {
    // One keep-alive connection opened first, to ask /health on while at the cap.
    const probe = connect(port, '127.0.0.1')
    const sockets: Socket[] = [probe]
    t.teardown(() => { for (const s of sockets) s.destroy() })
    await new Promise((resolve) => probe.once('connect', resolve))
    let probeText = ''
    probe.on('data', (c: Buffer) => { probeText += c.toString() })
    while (sockets.length < 40) {
      const s = connect(port, '127.0.0.1')
      s.on('error', () => {})
      sockets.push(s)
      await new Promise((resolve) => s.once('connect', resolve))
    }
    await waitFor(async () => {
      const r = await raw(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
      return r.text.startsWith('HTTP/1.1 503') && r.text.includes('too many connections') ? r : undefined
    }, { timeoutMs: 5000, what: 'a new connection refused with 503' })
    const body = JSON.stringify({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] })
    const refused = await raw(port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    t.match(refused.text, /^HTTP\/1\.1 503 [^]*too_many_connections/, 'a request on a new connection: 503 too_many_connections')
    t.ok(refused.closed, 'and that connection is closed')
    probe.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor(() => probeText.includes('}') ? true : undefined, { timeoutMs: 5000, what: 'the health answer on the kept connection' })
    t.match(probeText, /^HTTP\/1\.1 503 /, '/health on a connection within the cap: 503 while at the cap')
    t.match(probeText, /at the connection cap/)
    await waitFor(() => d.logs.find((l) => l.msg.includes('refusing HTTP connections')), { timeoutMs: 5000, what: 'the refusal logged' })
    for (const s of sockets) s.destroy()
    await waitFor(async () => (await fetch(`${d.url}/health`)).status === 200 ? true : undefined, { timeoutMs: 5000, what: '/health 200 again once below the cap' })
    t.pass('below the cap again: /health 200')
  })

  t.test('an idle admin-socket connection is closed', async (t) => {
    const s = connect(d.socket)
    s.on('error', () => {})
    let closed = false
    s.once('close', () => { closed = true })
    await waitFor(() => closed, { timeoutMs: 5000, what: 'the idle admin connection closed (admin.idle_timeout 1s)' })
    t.pass('closed')
    t.ok(await d.call('ping'), 'a request is still served')
  })
})

t.test('out of file descriptors: logged, and /health says so until they are free again', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  // A low descriptor limit (soft and hard: Node raises the soft one to the hard one) and no cap below it.
  const d = await DaemonProcess.start(t, root, {
    name: 'fds',
    swarmKeyFile,
    prefix: ['prlimit', '--nofile=200:200', '--'],
    config: { http: { listen: '127.0.0.1:0', max_connections: 100_000 }, replica: replica() }
  })
  const port = d.httpPort
  t.ok(d.logs.some((l) => l.msg.includes('is not below this process\'s descriptor limit (200)')), 'the start warns that the cap is above the limit')
  await waitFor(async () => (await fetch(`${d.url}/health`)).status === 200, { timeoutMs: 20_000, what: 'a ready replica' })
  const probe = connect(port, '127.0.0.1')
  const sockets: Socket[] = [probe]
  t.teardown(() => { for (const s of sockets) s.destroy() })
  await new Promise((resolve) => probe.once('connect', resolve))
  let probeText = ''
  probe.on('data', (c: Buffer) => { probeText += c.toString() })
  const health = async (): Promise<string> => {
    probeText = ''
    probe.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    const { value } = await waitFor(() => /\r\n\r\n\{.*\}/.test(probeText) ? probeText : undefined, { timeoutMs: 5000, what: 'the health answer on the kept connection' })
    return value
  }
  t.match(await health(), /^HTTP\/1\.1 200 /, 'healthy before')
  for (let i = 0; i < 260; i++) {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    sockets.push(s)
  }
  await waitFor(() => d.logs.find((l) => /file descriptors (nearly )?exhausted/.test(l.msg)), { timeoutMs: 10_000, what: 'the exhaustion logged' })
  t.pass('descriptor exhaustion is logged')
  const h = await health()
  t.match(h, /^HTTP\/1\.1 503 /, '/health: 503 while out of descriptors')
  t.match(h, /file descriptors/)
  for (const s of sockets.slice(1)) s.destroy()
  await waitFor(async () => (await health()).startsWith('HTTP/1.1 200') ? true : undefined, { timeoutMs: 10_000, what: '/health 200 once descriptors are free' })
  t.ok(d.logs.some((l) => l.msg === 'file descriptors available again'), 'the recovery is logged')
})
