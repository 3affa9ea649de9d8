/**
 * The supervisor running the real simulator as a child process: readiness,
 * a real request, engine load from its /metrics, graceful stop, crash and
 * restart with back-off, a slow start, a usage error, and the engine dying
 * with its daemon.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { processAlive } from '../../daemon/replica/process.ts'
import type { ReplicaExit } from '../../daemon/replica/supervisor.ts'
import { enginePids, groupMembers, replicaConfig, supervise } from './supervisor-helpers.ts'

const HOST = fileURLToPath(new URL('./supervisor-host.ts', import.meta.url))

function simConfig (over: Record<string, unknown> = {}): ReturnType<typeof replicaConfig> {
  return replicaConfig({
    command: 'sim',
    models: ['llama3'],
    slots: 4,
    readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 0.2, timeout_seconds: 2 },
    sim: { ttft_ms: 0, tokens_per_second: 20, max_tokens: 30 },
    ...over
  })
}

/** Starts a streamed chat completion and reads it to the end in the background. */
async function openStream (url: string, tokens: number): Promise<Promise<string>> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama3', messages: [{ role: 'user', content: 'hello' }], stream: true, max_tokens: tokens })
  })
  if (res.status !== 200 || res.body === null) throw new Error(`stream answered ${res.status}`)
  return res.text()
}

t.test('sim: starts, becomes ready, serves, shows its load, stops gracefully and leaves no process', async (t) => {
  const { sup, events } = supervise(t, { replica: simConfig(), metricsIntervalMs: 100 })
  await sup.start()
  t.equal(sup.snapshot().ready, false, 'start() does not wait for readiness')
  t.equal(sup.snapshot().state, 'starting')

  await waitFor(() => sup.snapshot().ready, { timeoutMs: 20_000, what: 'the sim to be ready' })
  const snap = sup.snapshot()
  t.match(snap, { ready: true, state: 'ready', reason: 'ready', models: ['llama3'], slots: 4, restarts: 0 })
  t.match(snap.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal(sup.url, snap.url)
  t.type(snap.pid, 'number')
  t.same(events.map((e) => e.name), ['replica:ready'])

  const url = snap.url!
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama3', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 })
  })
  t.equal(res.status, 200, 'a real request through the URL')
  const body = await res.json() as { choices: Array<{ message: { content: string } }> }
  t.equal(body.choices[0]!.message.content.split(' ').length, 3)

  await waitFor(() => sup.snapshot().engine?.running === 0, { timeoutMs: 5000, what: 'an idle engine reading' })
  const streams = await Promise.all([openStream(url, 30), openStream(url, 30), openStream(url, 30)])
  const { value: busy } = await waitFor(() => { const e = sup.snapshot().engine; return e !== null && e.running === 3 ? e : null }, { timeoutMs: 5000, what: 'three running requests in the snapshot' })
  t.match(busy, { source: 'llama.cpp', running: 3, waiting: 0, kvCache: 0.75 })
  t.ok(Date.now() - busy.at < 5000, 'a fresh reading')

  // 30 tokens at 20/s: 1.5 s per stream, still under way.
  const pid = snap.pid!
  const stopping = sup.stop(15_000)
  t.equal(sup.snapshot().ready, false, 'not ready from the first moment of stop()')
  t.equal(sup.snapshot().state, 'stopping')
  t.same(events.at(-1)?.args, ['stopping'])
  t.equal(sup.stop(), stopping, 'a second stop() shares the first')
  await stopping
  const texts = await Promise.all(streams)
  for (const text of texts) {
    t.match(text, /"finish_reason":"length"/, 'the in-flight stream completed')
    t.ok(text.trimEnd().endsWith('data: [DONE]'))
  }
  const after = sup.snapshot()
  t.match(after, { ready: false, state: 'stopped', url: null, pid: null, engine: null })
  t.match(after.lastExit, { code: 0, signal: null }, 'the sim drained and exited 0, no SIGKILL')
  t.equal(processAlive(pid), false)
  await waitFor(() => groupMembers(pid).length === 0, { timeoutMs: 5000, what: 'an empty process group' })
  t.notOk(events.some((e) => e.name === 'replica:exit'), 'stop() is not a crash')
  await sup.stop()
  t.equal(sup.snapshot().state, 'stopped', 'stop() again is a no-op')
})

t.test('sim: kill -9 → replica:exit, not ready, restarted after the back-off, ready again', async (t) => {
  const { sup, events, logs } = supervise(t, { replica: simConfig(), backoff: { initialMs: 400, maxMs: 5000 } })
  await sup.start()
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 20_000, what: 'ready' })
  const pid1 = sup.snapshot().pid!

  process.kill(pid1, 'SIGKILL')
  const { value: exit1 } = await waitFor(() => events.find((e) => e.name === 'replica:exit'), { timeoutMs: 5000, what: 'replica:exit' })
  const e1 = exit1.args[0] as ReplicaExit
  t.match(e1, { code: null, signal: 'SIGKILL', restartInMs: 400 })
  t.match(e1.reason, /killed by SIGKILL/)
  const mid = sup.snapshot()
  t.equal(mid.ready, false, 'not ready after the crash')
  t.equal(mid.state, 'restarting')
  t.equal(mid.reason, 'the engine killed by SIGKILL; restarting in 0.4 s', 'a kill is explained by the signal, not by the last log line')
  t.equal(mid.url, null)
  t.equal(mid.pid, null, 'no pid of a dead process')
  const unreadyAt = events.findIndex((e) => e.name === 'replica:unready')
  t.ok(unreadyAt >= 0 && unreadyAt < events.indexOf(exit1), 'unready comes first')

  await waitFor(() => sup.snapshot().ready && sup.snapshot().pid !== pid1, { timeoutMs: 20_000, what: 'ready again in a new process' })
  const readyAgain = events.filter((e) => e.name === 'replica:ready').at(-1)!
  t.ok(readyAgain.at - exit1.at >= 390, `waited out the back-off (${Math.round(readyAgain.at - exit1.at)} ms)`)
  t.equal(sup.snapshot().restarts, 1)
  t.equal(processAlive(pid1), false)

  // The second run was not ready for a minute: the delay doubles.
  const pid2 = sup.snapshot().pid!
  process.kill(pid2, 'SIGKILL')
  const { value: exit2 } = await waitFor(() => events.filter((e) => e.name === 'replica:exit')[1], { timeoutMs: 5000, what: 'the second replica:exit' })
  t.equal((exit2.args[0] as ReplicaExit).restartInMs, 800)
  await waitFor(() => sup.snapshot().ready && sup.snapshot().pid !== pid2, { timeoutMs: 20_000, what: 'ready after the second crash' })
  t.equal(sup.snapshot().restarts, 2)
  t.equal(enginePids(logs).length, 3, 'three processes in all')
})

t.test('sim: a slow start is not ready until its probe passes', async (t) => {
  const { sup } = supervise(t, { replica: simConfig(), simArgs: ['--ready-after-ms', '1500'] })
  const t0 = performance.now()
  await sup.start()
  const { value: starting } = await waitFor(() => {
    const s = sup.snapshot()
    return s.url !== null && /answered 503/.test(s.reason) ? s : null
  }, { timeoutMs: 20_000, what: 'a failed probe while loading' })
  t.match(starting, { ready: false, state: 'starting' })
  t.match(starting.reason, /^starting \(.* of initial_delay_seconds 30 s\): GET \/health answered 503 \{"status":"loading"\}$/)
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 20_000, what: 'ready after loading' })
  t.ok(performance.now() - t0 >= 1500, 'not before the engine said so')
  t.equal(sup.snapshot().restarts, 0, 'failing within the initial delay is no failure')
})

t.test('sim: flags it rejects leave the replica failed, not restarting', async (t) => {
  const { sup, events, logs } = supervise(t, { replica: simConfig(), simArgs: ['--no-such-flag'], backoff: { initialMs: 50 } })
  await sup.start()
  await waitFor(() => sup.snapshot().state === 'failed', { timeoutMs: 20_000, what: 'failed' })
  const s = sup.snapshot()
  t.match(s, { ready: false, state: 'failed', restarts: 0, pid: null })
  t.match(s.reason, /^the engine exited with code 2; it said: meshd sim: .*no-such-flag/)
  t.match(events.find((e) => e.name === 'replica:exit')?.args[0], { code: 2, restartInMs: null })
  t.equal(enginePids(logs).length, 1)
})

t.test('sim: the engine does not outlive its daemon (SIGKILL of the daemon)', async (t) => {
  const host = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', HOST, JSON.stringify({ command: 'sim', models: ['m'], readiness_probe: { path: '/health', period_seconds: 0.2 } })], { stdio: ['ignore', 'pipe', 'inherit'] })
  let enginePid: number | undefined
  t.teardown(() => {
    try { host.kill('SIGKILL') } catch {}
    if (enginePid !== undefined) try { process.kill(-enginePid, 'SIGKILL') } catch {}
  })
  let out = ''
  host.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  const { value: line } = await waitFor(() => out.includes('\n') ? out.split('\n')[0] : null, { timeoutMs: 20_000, what: 'the host to report a ready replica' })
  const snap = JSON.parse(line) as { pid: number, url: string }
  enginePid = snap.pid
  t.equal((await fetch(`${snap.url}/health`)).status, 200)
  t.ok(processAlive(snap.pid))

  host.kill('SIGKILL')
  await waitFor(() => !processAlive(snap.pid) && groupMembers(snap.pid).length === 0, { timeoutMs: 5000, what: 'the engine and its group gone' })
  await t.rejects(fetch(`${snap.url}/health`), 'nothing listens any more')
})
