// The CLI entry as the replica supervisor runs it: a real child process, its
// stdout protocol line, and SIGTERM drain semantics.

import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { chat, client, waitFor, type HasTeardown } from './sim-helpers.ts'

const MAIN = fileURLToPath(new URL('../../daemon/replica/sim/main.ts', import.meta.url))

interface Spawned {
  child: ChildProcess
  url: string
  port: number
  stdout(): string
  stderr(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function launch(t: HasTeardown, args: string[]): Omit<Spawned, 'url' | 'port'> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  // Whatever happens in the test, no simulator outlives it.
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let out = ''
  let err = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, stdout: () => out, stderr: () => err, exited }
}

async function spawnSim(t: HasTeardown, args: string[]): Promise<Spawned> {
  const p = launch(t, ['--port', '0', ...args])
  const line = await waitFor('the listening line', () => (p.stdout().includes('\n') ? p.stdout().split('\n')[0] : undefined), 15_000, 10)
  const { port } = JSON.parse(line) as { port: number }
  return { ...p, port, url: `http://127.0.0.1:${port}` }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

t.test('SIGTERM drains: the running stream completes, new requests get 503, exit 0', async (t) => {
  const tokens = 25
  const sim = await spawnSim(t, ['--models', 'llama3,other', '--slots', '2', '--ttft-ms', '0', '--tokens-per-second', '50', '--max-tokens', String(tokens)])
  t.match(sim.stdout().split('\n')[0], /^\{"event":"listening","port":\d+\}$/, 'exact protocol line')
  t.ok(sim.port > 0)

  const api = client(sim.url)
  const stream = await api.chat.completions.create({ model: 'llama3', messages: chat('drain me'), stream: true })
  const it = stream[Symbol.asyncIterator]()
  let content = 0
  let finish: string | null | undefined
  const pull = async () => {
    for (let next = await it.next(); !next.done; next = await it.next()) {
      if ((next.value.choices[0]?.delta.content ?? '') !== '') content++
      finish ??= next.value.choices[0]?.finish_reason
      if (content === 1) return
    }
  }
  await pull()
  t.equal(content, 1, 'stream under way')
  sim.child.kill('SIGTERM')

  await waitFor('health to report draining', async () => (await fetch(`${sim.url}/health`)).status === 503, 2000)
  t.same(await (await fetch(`${sim.url}/health`)).json(), { status: 'draining' })
  await t.rejects(api.chat.completions.create({ model: 'llama3', messages: chat('too late') }), { status: 503, code: 'engine_draining' })

  for (let next = await it.next(); !next.done; next = await it.next()) {
    if ((next.value.choices[0]?.delta.content ?? '') !== '') content++
    finish ??= next.value.choices[0]?.finish_reason
  }
  t.equal(content, tokens, 'the in-flight stream got every token')
  t.equal(finish, 'length')
  t.same(await within(sim.exited, 5000, 'exit after drain'), { code: 0, signal: null })
  t.equal(sim.stdout(), sim.stdout().split('\n')[0] + '\n', 'stdout carries only the protocol line')
  const logs = sim
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; level?: string })
  t.ok(logs.some((l) => l.msg === 'listening') && logs.some((l) => l.msg === 'drained'), 'JSON log lines on stderr')
})

t.test('a second SIGTERM exits at once, cutting what is left', async (t) => {
  const sim = await spawnSim(t, ['--models', 'm', '--ttft-ms', '0', '--tokens-per-second', '20'])
  const api = client(sim.url)
  const stream = await api.chat.completions.create({ model: 'm', messages: chat('forever'), max_tokens: 100000, stream: true })
  const it = stream[Symbol.asyncIterator]()
  await it.next()
  sim.child.kill('SIGTERM')
  await waitFor('health to report draining', async () => (await fetch(`${sim.url}/health`)).status === 503, 2000)
  sim.child.kill('SIGTERM')
  t.same(await within(sim.exited, 2000, 'exit after the second SIGTERM'), { code: 0, signal: null })
  // Ended or cut, either is fine; what matters is that it does not hang.
  const rest = await within((async () => {
    for (let next = await it.next(); !next.done; next = await it.next()) {
      /* drain what was already sent */
    }
    return 'ended'
  })().catch(() => 'cut'), 2000, 'the client stream to terminate')
  t.pass(`the client stream terminated (${rest})`)
})

t.test('bad flags exit 2 with usage', async (t) => {
  for (const args of [['--slots', '0'], ['--no-such-flag'], ['--fail-rate', '2'], ['--ttft-ms', 'soon']]) {
    const p = launch(t, args)
    const { code } = await within(p.exited, 15_000, `exit on ${args.join(' ')}`)
    t.equal(code, 2, args.join(' '))
    t.match(p.stderr(), /usage: node daemon\/replica\/sim\/main\.ts/)
    t.equal(p.stdout(), '', 'no protocol line')
  }
})
