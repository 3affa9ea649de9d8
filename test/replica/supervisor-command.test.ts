/**
 * The supervisor with an operator's `command` (a small Node HTTP server
 * written by the test, steered by files) and with a server managed elsewhere
 * (`url` only): probes (POST body, 503, timeouts), readiness coming and going,
 * engine metrics, output capture, crash and probe-triggered restarts, stop
 * escalation, and never touching what it does not own.
 */
import t from 'tap'
import { createServer, type Server } from 'node:http'
import { readFileSync, rmSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { tempDir } from '../helpers/tmp.ts'
import type { ReplicaExit } from '../../daemon/replica/supervisor.ts'
import { engineCommand, freePort, groupMembers, replicaConfig, supervise, touch } from './supervisor-helpers.ts'

const FAST_PROBE = { path: '/health', initial_delay_seconds: 30, period_seconds: 0.2, timeout_seconds: 2 }

async function commandConfig (dir: string, over: Record<string, unknown> = {}): Promise<ReturnType<typeof replicaConfig>> {
  const port = await freePort()
  return replicaConfig({ command: engineCommand(dir), url: `http://127.0.0.1:${port}`, models: ['m'], slots: 2, readiness_probe: FAST_PROBE, ...over })
}

function seen (dir: string): Array<{ method: string, url: string, contentType: string | null, body: string }> {
  const f = join(dir, 'seen.jsonl')
  if (!existsSync(f)) return []
  return readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { method: string, url: string, contentType: string | null, body: string })
}

t.test('command: runs through /bin/sh with its url; a post_data probe is a POST of that JSON; output is logged, bounded', async (t) => {
  const dir = tempDir(t)
  touch(dir, 'healthy')
  touch(dir, 'long-line')
  const postData = { model: 'm', prompt: 'ping', max_tokens: 1, nested: { ok: true } }
  const replica = await commandConfig(dir, { readiness_probe: { ...FAST_PROBE, path: '/ready', post_data: postData } })
  const { sup, logs } = supervise(t, { replica })
  await sup.start()
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 15_000, what: 'ready' })
  t.equal(sup.snapshot().url, replica.url)
  const probe = seen(dir)[0]
  t.match(probe, { method: 'POST', url: '/ready', contentType: 'application/json' })
  t.same(JSON.parse(probe!.body), postData, 'the body is post_data as JSON')
  t.ok(seen(dir).every((p) => p.method === 'POST'), 'every probe is a POST')
  t.equal(sup.snapshot().engine, null, 'an engine without /metrics leaves engine null')

  await waitFor(() => logs.some((l) => l.stream === 'stderr' && l.truncated === 100_000), { timeoutMs: 5000, what: 'the long line' })
  const long = logs.find((l) => l.truncated === 100_000)!
  t.equal((long.line as string).length, 16 * 1024, 'cut at 16 KiB')
  t.match(logs.find((l) => l.stream === 'stdout' && l.json !== undefined), { level: 40, replica: 'node', json: { msg: 'engine warming up' }, msg: 'engine warming up' }, 'a JSON line at its own level, nested')
  t.match(logs.find((l) => l.line === 'plain text line from the engine'), { level: 30, stream: 'stdout', msg: 'replica output' })
})

t.test('command: 503 until healthy; one failed probe takes it out, a pass puts it back; metrics when published', async (t) => {
  const dir = tempDir(t)
  const { sup, events } = supervise(t, { replica: await commandConfig(dir), metricsIntervalMs: 100, metricsIdleIntervalMs: 200 })
  await sup.start()
  const { value: loading } = await waitFor(() => { const s = sup.snapshot(); return /answered 503/.test(s.reason) ? s : null }, { timeoutMs: 15_000, what: 'a 503 probe' })
  t.match(loading, { ready: false, state: 'starting' })
  t.match(loading.reason, /GET \/health answered 503 \{"status":"loading"\}$/)

  touch(dir, 'healthy')
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 5000, what: 'ready once healthy' })
  rmSync(join(dir, 'healthy'))
  await waitFor(() => !sup.snapshot().ready, { timeoutMs: 5000, what: 'unready after a failed probe' })
  t.equal(sup.snapshot().state, 'unready')
  t.match(sup.snapshot().reason, /^readiness probe failed.*answered 503/)
  touch(dir, 'healthy')
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 5000, what: 'ready again' })
  t.same(events.map((e) => e.name), ['replica:ready', 'replica:unready', 'replica:ready'])
  t.match(events[1]!.args[0], /readiness probe failed/)
  t.equal(sup.snapshot().restarts, 0, 'a blip is no restart')

  touch(dir, 'metrics', 'vllm:num_requests_running{model_name="m",engine="0"} 2\nvllm:num_requests_running{model_name="m",engine="1"} 3\nvllm:num_requests_waiting{model_name="m"} 4\n')
  const { value: engine } = await waitFor(() => sup.snapshot().engine, { timeoutMs: 5000, what: 'engine load' })
  t.match(engine, { source: 'vllm', running: 5, waiting: 4 })
})

t.test('command: a probe that times out is a failure', async (t) => {
  const dir = tempDir(t)
  touch(dir, 'hang')
  const { sup } = supervise(t, { replica: await commandConfig(dir, { readiness_probe: { ...FAST_PROBE, timeout_seconds: 0.3 } }) })
  await sup.start()
  const { value: s } = await waitFor(() => { const x = sup.snapshot(); return /timed out/.test(x.reason) ? x : null }, { timeoutMs: 15_000, what: 'a timed-out probe' })
  t.match(s, { ready: false, state: 'starting' })
  t.match(s.reason, /GET \/health: timed out after 0\.3 s$/)

  rmSync(join(dir, 'hang'))
  touch(dir, 'healthy')
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 5000, what: 'ready' })
  touch(dir, 'hang')
  await waitFor(() => !sup.snapshot().ready, { timeoutMs: 5000, what: 'unready when the probe hangs' })
  t.match(sup.snapshot().reason, /timed out after 0\.3 s/)
})

t.test('command: a crash is reported with what the engine said, and restarted on the same url', async (t) => {
  const dir = tempDir(t)
  touch(dir, 'healthy')
  const replica = await commandConfig(dir)
  const { sup, events } = supervise(t, { replica, backoff: { initialMs: 200 } })
  await sup.start()
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 15_000, what: 'ready' })
  const pid1 = sup.snapshot().pid!
  await fetch(`${replica.url}/exit?code=3`)
  const { value: exit } = await waitFor(() => events.find((e) => e.name === 'replica:exit'), { timeoutMs: 5000, what: 'replica:exit' })
  const e = exit.args[0] as ReplicaExit
  t.match(e, { code: 3, signal: null, restartInMs: 200 })
  t.equal(e.reason, 'the engine exited with code 3; it said: fatal: asked to exit with code 3')
  await waitFor(() => sup.snapshot().ready && sup.snapshot().pid !== pid1, { timeoutMs: 15_000, what: 'ready again' })
  t.match(sup.snapshot(), { restarts: 1, url: replica.url, lastExit: { code: 3 } })
})

t.test('command: never ready within initial_delay_seconds → killed and started again', async (t) => {
  const dir = tempDir(t)
  const { sup, events } = supervise(t, {
    replica: await commandConfig(dir, { readiness_probe: { ...FAST_PROBE, initial_delay_seconds: 0.8 } }),
    backoff: { initialMs: 200 }
  })
  await sup.start()
  const { value: exit } = await waitFor(() => events.find((e) => e.name === 'replica:exit'), { timeoutMs: 15_000, what: 'the kill' })
  const e = exit.args[0] as ReplicaExit
  t.match(e.reason, /^not ready within initial_delay_seconds 0\.8 s: GET \/health answered 503.*; the engine exited with code 0$/, 'asked to stop, it drained and exited 0')
  t.equal(e.restartInMs, 200)
  await waitFor(() => sup.snapshot().restarts === 1 && sup.snapshot().state === 'starting', { timeoutMs: 5000, what: 'a second run' })
  touch(dir, 'healthy')
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 5000, what: 'the second run ready' })
})

t.test('command: stop() SIGKILLs an engine that ignores SIGTERM after the grace, with everything in its group', async (t) => {
  const dir = tempDir(t)
  touch(dir, 'healthy')
  touch(dir, 'ignore-term')
  // A background child in the same group, as a careless start script leaves.
  const replica = await commandConfig(dir)
  const { sup, logs } = supervise(t, { replica: { ...replica, command: `sleep 300 & ${replica.command}` } })
  await sup.start()
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 15_000, what: 'ready' })
  const pid = sup.snapshot().pid!
  t.ok(groupMembers(pid).length >= 3, 'engine, background sleep and watcher in one group')
  const t0 = performance.now()
  await sup.stop(600)
  const took = performance.now() - t0
  t.ok(took >= 590 && took < 5000, `waited out the grace, then killed (${Math.round(took)} ms)`)
  t.match(sup.snapshot().lastExit, { signal: 'SIGKILL' })
  t.ok(logs.some((l) => l.msg === 'replica did not exit within the grace period; SIGKILL'))
  await waitFor(() => groupMembers(pid).length === 0, { timeoutMs: 5000, what: 'the whole group gone' })
})

t.test('command: without exec, the wrapper still waits for the engine to drain', async (t) => {
  const dir = tempDir(t)
  touch(dir, 'healthy')
  touch(dir, 'drain-ms', '700')
  const replica = await commandConfig(dir)
  const { sup } = supervise(t, { replica: { ...replica, command: replica.command!.replace(/^exec /, '') } })
  await sup.start()
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 15_000, what: 'ready' })
  const pid = sup.snapshot().pid!
  const t0 = performance.now()
  await sup.stop(10_000)
  const took = performance.now() - t0
  t.ok(took >= 690, `stop() lasted the engine's drain (${Math.round(took)} ms)`)
  t.match(sup.snapshot().lastExit, { code: 0, signal: null }, 'the engine\'s own exit status, no SIGKILL')
  await waitFor(() => groupMembers(pid).length === 0, { timeoutMs: 5000, what: 'an empty group' })
})

t.test('a config the supervisor cannot run leaves it failed, without a process', async (t) => {
  const valid = replicaConfig({ command: 'vllm serve m', url: 'http://127.0.0.1:1', models: ['m'] })
  const { sup, logs } = supervise(t, { replica: { ...valid, url: undefined } })
  await sup.start()
  t.match(sup.snapshot(), { ready: false, state: 'failed', pid: null, url: null })
  t.match(sup.snapshot().reason, /replica\.url: expected `url`/)
  t.equal(logs.filter((l) => l.msg === 'replica process started').length, 0)
})

// ---------------------------------------------------------------------------
// A server managed elsewhere

interface External { server: Server, url: string, health: number, metrics: string | null, probes: number }

async function external (t: { teardown: (fn: () => unknown) => void }): Promise<External> {
  const ext: External = { server: createServer(), url: '', health: 200, metrics: null, probes: 0 }
  ext.server.on('request', (req, res) => {
    if (req.url === '/metrics') {
      if (ext.metrics === null) { res.statusCode = 404; res.end(); return }
      res.end(ext.metrics)
      return
    }
    ext.probes++
    res.statusCode = ext.health
    res.end()
  })
  await new Promise<void>((resolve) => { ext.server.listen(0, '127.0.0.1', resolve) })
  const addr = ext.server.address()
  ext.url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
  t.teardown(() => new Promise<void>((resolve) => { ext.server.closeAllConnections(); ext.server.close(() => { resolve() }) }))
  return ext
}

t.test('url only: probed and scraped, never started nor stopped by us', async (t) => {
  const ext = await external(t)
  ext.metrics = '# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 2\nllamacpp:requests_deferred 1\n'
  const { sup, logs, events } = supervise(t, { replica: replicaConfig({ url: ext.url, models: ['m'], readiness_probe: FAST_PROBE }), metricsIntervalMs: 100 })
  sup.on('replica:ready', () => { throw new Error('a listener that throws') })
  await sup.start()
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 5000, what: 'ready' })
  t.match(sup.snapshot(), { state: 'ready', url: ext.url, pid: null })
  t.ok(logs.some((l) => l.msg === 'a replica event listener threw'), 'a throwing listener is logged, not thrown into the daemon')
  await waitFor(() => sup.snapshot().engine?.running === 2, { timeoutMs: 5000, what: 'engine load' })
  t.match(sup.snapshot().engine, { source: 'llama.cpp', running: 2, waiting: 1 })

  ext.health = 500
  await waitFor(() => !sup.snapshot().ready, { timeoutMs: 5000, what: 'unready' })
  t.match(sup.snapshot().reason, /answered 500/)
  t.equal(logs.filter((l) => l.msg === 'replica process started').length, 0)

  await sup.stop()
  t.equal(sup.snapshot().state, 'stopped')
  const probesAfterStop = ext.probes
  t.equal((await fetch(`${ext.url}/health`)).status, 500, 'the server still runs: we never stop what we do not own')
  t.equal(ext.probes, probesAfterStop + 1, 'only our own request reached it')
  t.notOk(events.some((e) => e.name === 'replica:exit'))
})

t.test('url only: beyond the initial delay it stays out of traffic, probed, until it passes', async (t) => {
  const ext = await external(t)
  ext.health = 503
  const { sup, events, logs } = supervise(t, { replica: replicaConfig({ url: ext.url, models: ['m'], readiness_probe: { ...FAST_PROBE, initial_delay_seconds: 0.5 } }) })
  await sup.start()
  await waitFor(() => sup.snapshot().state === 'unready', { timeoutMs: 5000, what: 'the initial delay to pass' })
  t.match(sup.snapshot().reason, /^not ready within initial_delay_seconds 0\.5 s: GET \/health answered 503/)
  t.equal(logs.filter((l) => l.msg.startsWith('replica managed elsewhere is not ready')).length, 1, 'said once')
  ext.health = 204
  await waitFor(() => sup.snapshot().ready, { timeoutMs: 5000, what: 'ready after all (a 204 passes)' })
  t.notOk(events.some((e) => e.name === 'replica:exit'), 'nothing to restart')
})
