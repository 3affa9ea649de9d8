/**
 * The local provider with real meshd processes: the provider compliance
 * suite, then its own edges — max_instances, unknown ids, idempotency (one
 * process per key, also after delete), a config the node would refuse, a
 * reused pid, a launcher that died before recording the pid, SIGKILL after
 * the grace, pruning. Launched nodes are detached (their own sessions):
 * every test kills them itself at teardown, also when it fails.
 */
import t from 'tap'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { MESHD_BIN } from '../../daemon/localmesh/meshd-process.ts'
import { validateConfig } from '../../daemon/config/load.ts'
import type { Teardown } from '../helpers/tmp.ts'
import { runProviderCompliance } from './compliance.ts'
import { localProvider, type LocalProvider, type LocalProviderInit } from '../../providers/local/index.ts'
import { readManifest, writeManifest, type Manifest } from '../../providers/local/manifest.ts'
import { commandLine, findByConfig, isOurProcess, killNode, pidsByConfig } from '../../providers/local/liveness.ts'
import { isInsufficientCapacityError, isNotFoundError, isProviderError, type LaunchRequest, type Offering } from '../../providers/types.ts'

/**
 * A temporary root whose launched nodes are SIGKILLed (and waited for)
 * before the directory is removed, also when the test failed. Nodes are
 * found by manifest, and by command line for a claim without a pid.
 */
function workspace (t: Teardown): string {
  const root = mkdtempSync(join(tmpdir(), 'meshd-local-'))
  t.teardown(async () => {
    const pids = nodesUnder(root)
    for (const { pid } of pids) killNode(pid)
    await waitFor(() => pids.every(({ pid, config }) => !isOurProcess(pid, config)), { timeoutMs: 10_000, intervalMs: 20, what: 'launched nodes to die' }).catch(() => {})
    rmSync(root, { recursive: true, force: true })
  })
  return root
}

/** Every live launched node under `root` (any work dir, any depth of one). */
function nodesUnder (root: string): Array<{ pid: number, config: string }> {
  const out: Array<{ pid: number, config: string }> = []
  const visit = (dir: string, depth: number): void => {
    let names: string[] = []
    try { names = readdirSync(dir) } catch { return }
    const m = readManifest(dir)
    if (m !== null) {
      const pid = m.pid !== null && isOurProcess(m.pid, m.config) ? m.pid : findByConfig(m.config)
      if (pid !== null && pid !== process.pid) out.push({ pid, config: m.config })
      return
    }
    if (depth < 3) for (const n of names) visit(join(dir, n), depth + 1)
  }
  visit(root, 0)
  return out
}


function provider (root: string, over: Partial<LocalProviderInit> = {}): LocalProvider {
  return localProvider({
    name: 'workstation',
    cluster: 'compliance',
    workDir: join(root, 'work'),
    maxInstances: 8,
    costPerHour: 0.3,
    region: 'local',
    meshdBin: MESHD_BIN,
    validateConfig,
    swarmKeyFile: existsSync(join(root, 'swarm.key')) ? join(root, 'swarm.key') : writeSwarmKey(root),
    // A node leaked by a killed test run retires by itself within minutes.
    defaults: { log: { level: 'warn' }, burst: { ttl: '10m', lost_mesh_grace: '3m' } },
    ...over
  })
}

function launch (key: string, offering: Offering, over: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    key,
    cluster: 'compliance',
    offering,
    replica: { models: ['m'], slots: 2, command: 'sim', sim: { ttft_ms: 10, tokens_per_second: 1000, max_tokens: 4 } },
    node: { name: `burst-${key}`, config: {} },
    bootstrap: { peers: [] },
    ...over
  }
}

async function rejection (p: Promise<unknown>): Promise<unknown> {
  try { await p } catch (e) { return e }
  return undefined
}

async function offering (p: LocalProvider): Promise<Offering> {
  const [o] = await p.offerings()
  if (o === undefined) throw new Error('no offering')
  return o
}

async function running (p: LocalProvider, id: string): Promise<void> {
  await waitFor(async () => (await p.get(id)).state === 'running', { timeoutMs: 20_000, intervalMs: 50, what: `${id} running` })
}

async function gone (p: LocalProvider, id: string): Promise<void> {
  await waitFor(async () => !(await p.list()).some((i) => i.id === id), { timeoutMs: 20_000, intervalMs: 50, what: `${id} gone from list()` })
}

function manifestOf (p: LocalProvider, id: string): Manifest {
  const m = p.manifest(id)
  if (m === null) throw new Error(`no manifest for ${id}`)
  return m
}

t.test('compliance', async (t) => {
  const root = workspace(t)
  let n = 0
  await runProviderCompliance(t, () => {
    const p = provider(root, { workDir: join(root, `w${++n}`) })
    return {
      provider: p,
      cluster: 'compliance',
      otherCluster: 'elsewhere',
      // An offering this provider does not have (another region): refused, nothing started.
      unavailableOffering: async () => ({ ...(await offering(p)), region: 'elsewhere' }),
      close: async () => { await p.killAll() }
    }
  }, { settleMs: 20_000, pollMs: 50 })
})

t.test('max_instances: a full provider refuses with InsufficientCapacityError and gives the key back', async (t) => {
  const root = workspace(t)
  const p = provider(root, { maxInstances: 1 })
  const o = await offering(p)
  t.match(o, { provider: 'workstation', kind: 'local', region: 'local', spot: false, pricePerHour: 0.3, available: true, capacity: 1 })
  const a = await p.create(launch('full-1', o))
  t.match(await p.offerings(), [{ available: false, capacity: 0 }], 'the offering says it is full')
  const e = await rejection(p.create(launch('full-2', o)))
  t.ok(isInsufficientCapacityError(e), `InsufficientCapacityError, got ${String(e)}`)
  t.equal((await p.list()).length, 1, 'nothing more was started')
  t.notOk(existsSync(join(root, 'work', 'full-2')), 'the refused key left nothing behind')
  await p.delete(a.id)
  await gone(p, a.id)
  t.match(await p.offerings(), [{ available: true, capacity: 1 }], 'free again once the first is gone')
  const b = await p.create(launch('full-2', o))
  t.equal(b.state, 'pending', 'the refused key can be launched once there is room: it was never used')
  await p.delete(b.id)
})

t.test('unknown ids: NotFoundError from get() and delete(), whatever their shape', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  for (const id of ['local-nope', 'nope', 'local-', 'local-../work', 'local-.', '']) {
    t.ok(isNotFoundError(await rejection(p.get(id))), `get(${JSON.stringify(id)})`)
    t.ok(isNotFoundError(await rejection(p.delete(id))), `delete(${JSON.stringify(id)})`)
  }
})

t.test('idempotent by key: concurrent creates (two provider objects) start one process; create after delete gives the terminated instance', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  const q = provider(root) // another daemon on the same machine, same work dir
  const o = await offering(p)
  const all = await Promise.all([p.create(launch('idem-1', o)), q.create(launch('idem-1', o)), p.create(launch('idem-1', o)), q.create(launch('idem-1', o))])
  t.same(new Set(all.map((i) => i.id)).size, 1, 'one instance id for all four')
  const m = manifestOf(p, all[0]!.id)
  t.equal(pidsByConfig(m.config).length, 1, 'one process runs for the key')
  t.equal((await q.list()).length, 1, 'listed once')
  await running(p, m.id)
  await q.delete(m.id)
  await gone(p, m.id)
  const again = await p.create(launch('idem-1', o))
  t.match(again, { id: m.id, state: 'terminated' }, 'create after delete: the old instance, terminated')
  t.equal(pidsByConfig(m.config).length, 0, 'and no process was started for it')
  t.equal(manifestOf(p, m.id).pid, m.pid, 'the manifest still names the first process')
})

t.test('a node config meshd would refuse is rejected before anything runs, and the key is given back', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  const o = await offering(p)
  const e = await rejection(p.create(launch('bad-1', o, { node: { name: 'burst-bad-1', config: { http: { listen: 'not an address' } } } })))
  t.ok(e instanceof Error && /http\.listen/.test(e.message), `the error names the key: ${String(e)}`)
  t.notOk(isProviderError(e), 'not a capacity or availability error: retrying the same request cannot help')
  t.same(await p.list(), [], 'nothing runs')
  t.notOk(existsSync(join(root, 'work', 'bad-1')), 'nothing is left of the key')
  const ok = await p.create(launch('bad-1', o))
  t.equal(ok.state, 'pending', 'the key is free for a request that works')
  await p.delete(ok.id)
})

t.test('the node config: request over defaults over the provider, the instance fields fixed', async (t) => {
  const root = workspace(t)
  const p = provider(root, { defaults: { log: { level: 'warn' }, burst: { ttl: '10m', lost_mesh_grace: '3m' }, http: { max_queue: 7 }, voter: true } })
  const o = await offering(p)
  const i = await p.create(launch('cfg-1', o, {
    bootstrap: { peers: ['/ip4/127.0.0.1/tcp/1/p2p/12D3KooWNMWw3XFVvMENoSSEpPr1MVqDJ69bfmSnm2nKdQQNoJo1'] },
    node: { name: 'burst-cfg-1', config: { http: { drain_timeout: '5s' }, cluster: 'other', instance: { provider: 'workstation', key: 'cfg-1' }, cost_per_hour: 0.3 } }
  }))
  const m = manifestOf(p, i.id)
  const { readFileSync } = await import('node:fs')
  const c = JSON.parse(readFileSync(m.config, 'utf8')) as Record<string, any>
  t.equal(c.cluster, 'compliance', 'the cluster is the request\'s, not an override')
  t.equal(c.voter, false, 'a burst node never votes')
  t.equal(c.node_name, 'burst-cfg-1')
  t.equal(c.swarm_key_file, join(root, 'swarm.key'))
  t.same(c.mesh.listen, ['/ip4/127.0.0.1/tcp/0'])
  t.equal(c.mesh.bootstrap.length, 1)
  t.same(c.http, { listen: '127.0.0.1:0', max_queue: 7, drain_timeout: '5s' }, 'objects merge key by key')
  t.same(c.admin, { socket: m.socket })
  t.same(c.instance, { provider: 'workstation', id: i.id, key: 'cfg-1', launched_at: i.launchedAt })
  t.match(c.replica, { models: ['m'], slots: 2, command: 'sim', readiness_probe: { path: '/health' } })
  t.equal(m.stop_grace_ms, 65_000, 'the grace follows the node\'s drain_timeout (5 s + 60 s)')
  await p.delete(i.id)
})

t.test('a reused pid is not mistaken for the instance', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  const o = await offering(p)
  const inst = await p.create(launch('pid-1', o))
  await p.delete(inst.id)
  await gone(p, inst.id)
  // Its pid now belongs to an unrelated live process (a sleep in a group of
  // its own, so a provider that mistook it would kill only the sleep), and
  // the record was never closed; it even says a stop was asked for long ago.
  const other = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' })
  t.teardown(() => { other.kill('SIGKILL') })
  await new Promise((resolve) => other.once('spawn', resolve))
  const dir = join(root, 'work', 'pid-1')
  const m = readManifest(dir)!
  writeManifest(dir, { ...m, pid: other.pid!, terminated_at: null, exit: null, stop_requested_at: Date.now() - 3_600_000 })
  const late = provider(root, { now: () => Date.now() + 3_600_000 })
  t.same(await late.list(), [], 'a live pid running something else is not our instance')
  t.ok(isNotFoundError(await rejection(p.get(inst.id))), 'get(): NotFoundError')
  t.ok(isNotFoundError(await rejection(p.delete(inst.id))), 'delete(): NotFoundError')
  t.not(readManifest(dir)!.terminated_at, null, 'the record is closed')
  t.equal(readManifest(dir)!.killed_at, null, 'nothing was killed')
  t.same(commandLine(other.pid!), ['sleep', '60'], 'the unrelated process lives')
})

t.test('a launcher that died before recording the pid: its node is adopted, or the key is closed as terminated', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  const o = await offering(p)
  const dead = spawnSync('true').pid! // a pid whose process has exited
  // 1. The node was started: found by its command line.
  const a = await p.create(launch('adopt-1', o))
  await running(p, a.id)
  const m = manifestOf(p, a.id)
  const dir = join(root, 'work', 'adopt-1')
  writeManifest(dir, { ...m, pid: null, launcher_pid: dead })
  const q = provider(root)
  const listed = await q.list()
  t.match(listed, [{ id: a.id, state: 'running' }], 'a new provider object lists it')
  t.equal(readManifest(dir)!.pid, m.pid, 'with its pid recorded again')
  t.match(readManifest(dir)!.note, /adopted/)
  // 2. Nothing was started: the key is remembered as terminated.
  const ghostDir = join(root, 'work', 'ghost-1')
  const { mkdirSync } = await import('node:fs')
  mkdirSync(ghostDir)
  writeManifest(ghostDir, { ...m, key: 'ghost-1', id: 'local-ghost-1', pid: null, launcher_pid: dead, config: join(ghostDir, 'meshd.json'), running_at: null })
  t.match(await q.create(launch('ghost-1', o)), { id: 'local-ghost-1', state: 'terminated' }, 'create of its key: terminated')
  t.match(readManifest(ghostDir)!.note, /did not finish/)
  // 3. A launch under way (its launcher alive, recent) is pending, not lost.
  const liveDir = join(root, 'work', 'busy-1')
  mkdirSync(liveDir)
  writeManifest(liveDir, { ...m, key: 'busy-1', id: 'local-busy-1', pid: null, launcher_pid: process.pid, launched_at: Date.now(), config: join(liveDir, 'meshd.json'), running_at: null })
  t.match(await q.get('local-busy-1'), { state: 'pending' }, 'a claim whose launcher lives is pending')
  const later = provider(root, { now: () => Date.now() + 120_000 })
  t.ok(isNotFoundError(await rejection(later.get('local-busy-1'))), 'and settled as terminated once it is stale with no node')
  await q.delete(a.id)
  await gone(q, a.id)
})

t.test('a node that does not stop after SIGTERM is SIGKILLed after the grace: by the deleting process\'s timer', async (t) => {
  const root = workspace(t)
  const p = provider(root, { stopGraceMs: 800 })
  const o = await offering(p)
  const i = await p.create(launch('hang-1', o))
  await running(p, i.id)
  const pid = manifestOf(p, i.id).pid!
  process.kill(pid, 'SIGSTOP') // it cannot act on SIGTERM now
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  await p.delete(i.id)
  t.match(await p.get(i.id), { state: 'stopping' }, 'stopping while the grace runs')
  await p.delete(i.id)
  t.match(await p.get(i.id), { state: 'stopping' }, 'deleting again resolves; still stopping')
  const m = manifestOf(p, i.id)
  // No provider call from here on: only the timer set by delete() can kill it.
  await waitFor(() => !isOurProcess(pid, m.config), { timeoutMs: 10_000, intervalMs: 50, what: 'the stopped node to be killed' })
  await waitFor(() => manifestOf(p, i.id).exit !== null, { timeoutMs: 5_000, intervalMs: 20, what: 'the exit to be recorded' })
  t.match(manifestOf(p, i.id), { exit: { signal: 'SIGKILL' }, note: /SIGKILLed/ }, 'killed, and the manifest says why')
  t.notOk(manifestOf(p, i.id).killed_at === null, 'killed_at recorded')
  t.ok(isNotFoundError(await rejection(p.delete(i.id))), 'then delete() says NotFoundError')
})

t.test('a node that does not stop after SIGTERM is SIGKILLed after the grace: by a later list() of another provider object', async (t) => {
  const root = workspace(t)
  const p = provider(root) // the default grace: 180 s
  const o = await offering(p)
  const i = await p.create(launch('hang-2', o))
  await running(p, i.id)
  const m = manifestOf(p, i.id)
  process.kill(m.pid!, 'SIGSTOP')
  t.teardown(() => { try { process.kill(m.pid!, 'SIGCONT') } catch {} })
  await p.delete(i.id)
  const q = provider(root) // a new leader, same clock
  t.match(await q.list(), [{ id: i.id, state: 'stopping' }], 'within the grace: stopping, not killed')
  t.ok(isOurProcess(m.pid, m.config), 'still there')
  const later = provider(root, { now: () => Date.now() + 181_000 }) // a new leader, after the grace
  t.match(await later.list(), [{ id: i.id, state: 'stopping' }], 'the list() that escalates still shows it stopping')
  await waitFor(() => !isOurProcess(m.pid, m.config), { timeoutMs: 10_000, intervalMs: 20, what: 'the node to die' })
  t.same(await later.list(), [], 'then it is gone')
  t.not(readManifest(join(root, 'work', 'hang-2'))!.killed_at, null)
})

t.test('pruning: a day after it ended its state, config and log go; the manifest (the key) stays; after 90 days the key is forgotten', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  const o = await offering(p)
  const i = await p.create(launch('old-1', o))
  await running(p, i.id)
  const keep = await p.create(launch('young-1', o))
  await p.delete(i.id)
  await gone(p, i.id)
  const dir = join(root, 'work', 'old-1')
  t.same(readdirSync(dir).sort(), ['instance.json', 'meshd.json', 'meshd.log', 'state'], 'everything is there right after')
  await provider(root, { now: () => Date.now() + 23 * 3_600_000 }).list()
  t.equal(readdirSync(dir).length, 4, 'kept within the day')
  await provider(root, { now: () => Date.now() + 25 * 3_600_000 }).list()
  t.same(readdirSync(dir), ['instance.json'], 'pruned after a day, manifest kept')
  t.not(readManifest(dir)!.pruned_at, null)
  t.match(await p.create(launch('old-1', o)), { id: i.id, state: 'terminated' }, 'the key is still remembered')
  t.ok(existsSync(join(root, 'work', 'young-1', 'state')), 'a live instance is never pruned')
  await provider(root, { now: () => Date.now() + 91 * 24 * 3_600_000 }).list()
  t.notOk(existsSync(dir), 'forgotten after 90 days')
  t.ok(existsSync(join(root, 'work', 'young-1', 'instance.json')), 'the live one is untouched')
  await p.delete(keep.id)
})

t.test('a damaged manifest is not listed and its key is refused, not reused', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  const o = await offering(p)
  const { mkdirSync, utimesSync } = await import('node:fs')
  const dir = join(root, 'work', 'junk-1')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'instance.json'), '{"half": ')
  const old = new Date(Date.now() - 3_600_000)
  utimesSync(join(dir, 'instance.json'), old, old)
  t.same(await p.list(), [], 'not listed')
  const e = await rejection(p.create(launch('junk-1', o)))
  t.match(e, { code: 'MESHD_PROVIDER_UNAVAILABLE', message: /damaged/ }, 'create() of its key says what to do')
  t.equal(pidsByConfig(join(dir, 'meshd.json')).length, 0, 'and starts nothing')
})

t.test('the launcher\'s MESHD_* overrides are not passed on (they would give every node its ports and socket)', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  const o = await offering(p)
  const saved = process.env.MESHD_ADMIN_SOCKET
  process.env.MESHD_ADMIN_SOCKET = join(root, 'launcher.sock')
  t.teardown(() => { if (saved === undefined) delete process.env.MESHD_ADMIN_SOCKET; else process.env.MESHD_ADMIN_SOCKET = saved })
  const i = await p.create(launch('env-1', o))
  await running(p, i.id)
  t.ok(existsSync(manifestOf(p, i.id).socket), 'the node answers on its own socket')
  t.notOk(existsSync(join(root, 'launcher.sock')), 'not on the launcher\'s')
  await p.delete(i.id)
})

t.test('keys that are not safe file names get their own directories, never another key\'s', async (t) => {
  const root = workspace(t)
  const p = provider(root)
  const o = await offering(p)
  const a = await p.create(launch('../a b', o, { node: { name: 'burst-a', config: {} } }))
  const b = await p.create(launch('a_b', o, { node: { name: 'burst-b', config: {} } }))
  t.not(a.id, b.id, 'two keys that sanitise alike are two instances')
  t.match(a.id, /^local-a_b~[0-9a-f]{16}$/, `a readable id with a hash: ${a.id}`)
  t.equal(b.id, 'local-a_b', 'a safe key is its own directory')
  t.same(readdirSync(join(root, 'work')).sort(), [a.id.slice('local-'.length), 'a_b'].sort(), 'both inside the work dir')
  t.match(await p.get(a.id), { key: '../a b' }, 'get() by the id finds the key')
  t.match(await p.create(launch('../a b', o)), { id: a.id }, 'and the key finds its instance again')
  await p.delete(a.id)
  await p.delete(b.id)
})
