/**
 * The local provider's nodes in a real mesh, and their independence from
 * whoever launched them: a launched node joins a daemon started by the test
 * as a burst member with a ready replica, drains on delete (a request in
 * flight finishes, a repeated delete does not cut it short) and exits 0; an
 * instance outlives the provider object and the process that made it (the
 * launcher SIGKILLed); separate processes racing to create one key start
 * one node. Launched nodes are detached: every test kills them itself at
 * teardown, also when it fails.
 */
import t from 'tap'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { MESHD_BIN } from '../../daemon/localmesh/meshd-process.ts'
import { validateConfig } from '../../daemon/config/load.ts'
import type { Teardown } from '../helpers/tmp.ts'
import { localProvider, type LocalProvider, type LocalProviderInit } from '../../providers/local/index.ts'
import { readManifest, type Manifest } from '../../providers/local/manifest.ts'
import { findByConfig, isOurProcess, killNode, pidsByConfig } from '../../providers/local/liveness.ts'
import type { Instance, LaunchRequest, Offering } from '../../providers/types.ts'
import { callDaemon } from '../../daemon/admin/client.ts'

const PROVIDER = join(import.meta.dirname, '../../providers/local/index.ts')
const MESHD_PROCESS = join(import.meta.dirname, '../../daemon/localmesh/meshd-process.ts')
const CONFIG_LOAD = join(import.meta.dirname, '../../daemon/config/load.ts')
const SIM = { ttft_ms: 10, tokens_per_second: 20, max_tokens: 40 }

function workspace (t: Teardown): string {
  const root = mkdtempSync(join(tmpdir(), 'meshd-local-'))
  t.teardown(async () => {
    const nodes: Array<{ pid: number, config: string }> = []
    let names: string[] = []
    try { names = readdirSync(join(root, 'work')) } catch {}
    for (const n of names) {
      const m = readManifest(join(root, 'work', n))
      if (m === null) continue
      const pid = m.pid !== null && isOurProcess(m.pid, m.config) ? m.pid : findByConfig(m.config)
      if (pid !== null && pid !== process.pid) nodes.push({ pid, config: m.config })
    }
    for (const { pid } of nodes) killNode(pid)
    await waitFor(() => nodes.every(({ pid, config }) => !isOurProcess(pid, config)), { timeoutMs: 10_000, intervalMs: 20, what: 'launched nodes to die' }).catch(() => {})
    rmSync(root, { recursive: true, force: true })
  })
  return root
}

function provider (root: string, swarmKeyFile: string, over: Partial<LocalProviderInit> = {}): LocalProvider {
  return localProvider({
    name: 'workstation',
    cluster: 'mesh',
    workDir: join(root, 'work'),
    maxInstances: 4,
    costPerHour: 0.3,
    region: 'local',
    meshdBin: MESHD_BIN,
    validateConfig,
    swarmKeyFile,
    defaults: { log: { level: 'info' }, mesh: { heartbeat_ms: 250 }, burst: { ttl: '10m', lost_mesh_grace: '3m' } },
    ...over
  })
}

function launch (key: string, offering: Offering, peers: string[] = []): LaunchRequest {
  return {
    key,
    cluster: 'mesh',
    offering,
    replica: { models: ['tiny'], slots: 2, command: 'sim', sim: SIM },
    // What the leader adds (daemon/leader/plan/launch-request.ts).
    node: { name: `burst-${key}`, config: { voter: false, provider: 'workstation', region: 'local', spot: false, cost_per_hour: 0.3, instance: { provider: 'workstation', key } } },
    bootstrap: { peers }
  }
}


function manifestOf (p: LocalProvider, id: string): Manifest {
  const m = p.manifest(id)
  if (m === null) throw new Error(`no manifest for ${id}`)
  return m
}

t.test('a launched node joins a daemon\'s mesh as a burst member with a ready replica; delete drains it and it exits 0', async (t) => {
  const root = workspace(t)
  const key = writeSwarmKey(root)
  const voter = await DaemonProcess.start(t, root, { name: 'voter', cluster: 'mesh', swarmKeyFile: key, heartbeatMs: 250 })
  const p = provider(root, key)
  const [o] = await p.offerings()
  const inst = await p.create(launch('join-1', o!, [voter.joinAddr]))
  t.equal(inst.state, 'pending', 'create resolves once the process runs, before it joins')
  const { value: member, ms } = await waitFor(async () => (await voter.status()).members.find((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true),
    { timeoutMs: 30_000, what: 'the burst member alive with a ready replica' })
  t.pass(`the daemon lists it alive and ready ${Math.round(ms)} ms after create`)
  t.match(member, {
    name: 'burst-join-1',
    voter: false,
    burst: true,
    provider: 'workstation',
    cost_per_hour: 0.3,
    instance: { provider: 'workstation', id: inst.id, launched_at: inst.launchedAt },
    replica: { ready: true, models: ['tiny'], slots: 2 }
  })
  const got = await p.get(inst.id)
  t.equal(got.state, 'running')
  t.ok(got.address?.endsWith(`/p2p/${member.id}`), `its mesh address: ${got.address}`)

  // A request in flight on the burst node while it is deleted (twice: a
  // second SIGTERM would make meshd exit at once, cutting it).
  // Its own HTTP port from its admin socket (the heartbeat carries the configured `127.0.0.1:0`).
  const info = await callDaemon(manifestOf(p, inst.id).socket, 'info', {}, { timeoutMs: 5000 }) as { http: string }
  const base = `http://${info.http}`
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', stream: true, max_tokens: 30, messages: [{ role: 'user', content: 'count' }] })
  })
  t.equal(res.status, 200)
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let body = ''
  while (!body.includes('"content"')) {
    const { value, done } = await reader.read()
    if (done) break
    body += decoder.decode(value, { stream: true })
  }
  await p.delete(inst.id)
  await p.delete(inst.id)
  t.match(await p.get(inst.id), { state: 'stopping' }, 'stopping while it drains')
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    body += decoder.decode(value, { stream: true })
  }
  t.ok(body.includes('[DONE]'), 'the request in flight finished')
  t.match(body, /"finish_reason":"length"/, 'with every token it asked for')
  await waitFor(async () => !(await p.list()).some((i) => i.id === inst.id), { timeoutMs: 30_000, what: 'the node to leave list()' })
  await waitFor(() => manifestOf(p, inst.id).exit, { timeoutMs: 5_000, intervalMs: 20, what: 'its exit to be recorded' })
  t.same(manifestOf(p, inst.id).exit, { code: 0, signal: null }, 'it drained and exited 0')
  await waitFor(async () => (await voter.status()).members.find((m) => m.id === member.id)?.state !== 'alive', { timeoutMs: 20_000, what: 'the daemon to see it leave' })
  t.pass('the daemon no longer lists it alive')
})

/** A separate Node process that creates one instance with the provider when told to ("go" on stdin), prints it, and stays. */
function launcherScript (root: string): string {
  const file = join(root, 'launcher.ts')
  writeFileSync(file, `
    const [workDir, swarmKeyFile, key] = process.argv.slice(2)
    const { localProvider } = await import(${JSON.stringify(PROVIDER)})
    const { MESHD_BIN } = await import(${JSON.stringify(MESHD_PROCESS)})
    const { validateConfig } = await import(${JSON.stringify(CONFIG_LOAD)})
    const p = localProvider({ name: 'workstation', cluster: 'mesh', workDir, maxInstances: 4, costPerHour: 0.3, region: 'local', swarmKeyFile, meshdBin: MESHD_BIN, validateConfig,
      defaults: { log: { level: 'info' }, burst: { ttl: '10m', lost_mesh_grace: '3m' } } })
    const [o] = await p.offerings()
    console.log('ready')
    await new Promise((resolve) => process.stdin.once('data', resolve))
    const i = await p.create({ key, cluster: 'mesh', offering: o, replica: { models: ['tiny'], slots: 1, command: 'sim' }, node: { name: 'burst-' + key, config: {} }, bootstrap: { peers: [] } })
    console.log(JSON.stringify(i))
    setInterval(() => {}, 60_000)
  `)
  return file
}

interface Launcher { child: ChildProcess, lines: AsyncIterator<string> }

function startLauncher (t: Teardown, script: string, args: string[]): Launcher {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() }
}

async function line (l: Launcher): Promise<string> {
  const timeout = new Promise<never>((_resolve, reject) => { setTimeout(() => { reject(new Error('no line from the launcher within 20 s')) }, 20_000).unref() })
  const r = await Promise.race([l.lines.next(), timeout])
  if (r.done === true) throw new Error('the launcher exited')
  return r.value
}

async function killed (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

t.test('an instance outlives the provider object and the process that launched it', async (t) => {
  const root = workspace(t)
  const key = writeSwarmKey(root)
  const workDir = join(root, 'work')

  // A provider object is lost (the leader changed); a new one, same work dir, takes over.
  const first = provider(root, key)
  const [o] = await first.offerings()
  const a = await first.create(launch('keep-1', o!))
  const second = provider(root, key)
  await waitFor(async () => (await second.get(a.id)).state === 'running', { timeoutMs: 20_000, what: 'keep-1 running, seen by the new object' })
  t.match(await second.list(), [{ id: a.id, key: 'keep-1', state: 'running' }], 'the new object lists it')
  await second.delete(a.id)
  await waitFor(async () => (await second.list()).length === 0, { timeoutMs: 20_000, what: 'keep-1 gone' })
  t.match(await first.create(launch('keep-1', o!)), { id: a.id, state: 'terminated' }, 'the old object agrees it is terminated')

  // A separate process launches one and is SIGKILLed: the node keeps running.
  const l = startLauncher(t, launcherScript(root), [workDir, key, 'orphan-1'])
  t.equal(await line(l), 'ready')
  l.child.stdin!.write('go\n')
  const made = JSON.parse(await line(l)) as Instance
  const m = readManifest(join(workDir, 'orphan-1'))!
  t.equal(m.launcher_pid, l.child.pid, 'launched by that process')
  await killed(l.child)
  const later = provider(root, key)
  await waitFor(async () => (await later.get(made.id)).state === 'running', { timeoutMs: 20_000, what: 'the orphan running after its launcher died' })
  t.ok(isOurProcess(m.pid, m.config), 'its process is alive')
  t.match(await later.list(), [{ id: made.id, state: 'running' }], 'a new provider lists it')
  await later.delete(made.id)
  await waitFor(() => !isOurProcess(m.pid, m.config), { timeoutMs: 20_000, what: 'the orphan to exit after delete' })
  t.same(await later.list(), [], 'and it is gone')
})

t.test('separate processes racing to create one key start one node', async (t) => {
  const root = workspace(t)
  const key = writeSwarmKey(root)
  const workDir = join(root, 'work')
  const script = launcherScript(root)
  const ls = [0, 1, 2].map(() => startLauncher(t, script, [workDir, key, 'race-1']))
  for (const l of ls) t.equal(await line(l), 'ready')
  for (const l of ls) l.child.stdin!.write('go\n')
  const made = await Promise.all(ls.map(async (l) => JSON.parse(await line(l)) as Instance))
  t.same(new Set(made.map((i) => i.id)).size, 1, `one instance id for three processes: ${made[0]!.id}`)
  const m = readManifest(join(workDir, 'race-1'))!
  t.equal(pidsByConfig(m.config).length, 1, 'one meshd process runs for the key')
  t.ok(ls.some((l) => l.child.pid === m.launcher_pid), 'launched by one of them')
  for (const l of ls) await killed(l.child)
  const p = provider(root, key)
  t.match(await p.list(), [{ id: made[0]!.id }], 'it outlived all three')
  await p.delete(made[0]!.id)
  await waitFor(() => !isOurProcess(m.pid, m.config), { timeoutMs: 20_000, what: 'race-1 to exit' })
})
