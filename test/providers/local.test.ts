/**
 * The local provider against the provider compliance suite, with real meshd
 * processes; then a launched node really joining a daemon's mesh, and its
 * instances outliving the provider object (and the process) that made them.
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { tempDir, type Teardown } from '../helpers/tmp.ts'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../helpers/poll.ts'
import { runProviderCompliance } from './compliance.ts'
import { localProvider, type LocalProvider } from '../../providers/local/index.ts'
import { readManifest, writeManifest } from '../../providers/local/manifest.ts'
import type { LaunchRequest, Offering } from '../../providers/types.ts'

/** Kills every process a test's work dir launched, also when the test failed. */
function reap (t: Teardown, workDir: string): void {
  t.teardown(() => {
    let names: string[] = []
    try { names = readdirSync(workDir) } catch {}
    for (const n of names) {
      const m = readManifest(join(workDir, n))
      if (m?.pid != null && m.pid !== process.pid) { try { process.kill(-m.pid, 'SIGKILL') } catch {} try { process.kill(m.pid, 'SIGKILL') } catch {} }
    }
  })
}

function provider (t: Teardown, root: string, over: Partial<Parameters<typeof localProvider>[0]> = {}): LocalProvider {
  const workDir = over.workDir ?? join(root, 'work')
  reap(t, workDir)
  return localProvider({
    name: 'workstation', cluster: 'compliance', workDir, maxInstances: 8, costPerHour: 0.3, region: 'local',
    swarmKeyFile: over.swarmKeyFile ?? writeSwarmKey(root, `swarm-${Math.random().toString(36).slice(2)}.key`),
    defaults: { log: { level: 'warn' } },
    ...over
  })
}

function launch (key: string, offering: Offering, over: Partial<LaunchRequest> = {}): LaunchRequest {
  return { key, cluster: 'compliance', offering, replica: { models: ['m'], slots: 2, command: 'sim', sim: { ttft_ms: 10, tokens_per_second: 1000, max_tokens: 4 } }, node: { name: `burst-${key}`, config: {} }, bootstrap: { peers: [] }, ...over }
}

t.test('compliance', async (t) => {
  const root = tempDir(t)
  await runProviderCompliance(t, () => ({
    provider: provider(t, root, { workDir: join(root, `w-${Math.random().toString(36).slice(2)}`) }),
    cluster: 'compliance',
    otherCluster: 'elsewhere',
    unavailableOffering: async () => null
  }), { settleMs: 20_000, pollMs: 100 })
})

t.test('a full provider refuses with InsufficientCapacityError', async (t) => {
  const root = tempDir(t)
  const p = provider(t, root, { maxInstances: 1 })
  const [o] = await p.offerings()
  const a = await p.create(launch('k1', o!))
  t.match(await p.offerings(), [{ available: false, capacity: 0 }], 'no capacity left is said in the offering')
  const err = await p.create(launch('k2', o!)).then(() => null, (e: unknown) => e)
  t.match(err, { code: 'MESHD_PROVIDER_INSUFFICIENT_CAPACITY' })
  t.equal((await p.list()).length, 1, 'nothing more was started')
  await p.delete(a.id)
})

t.test('a launched node joins the mesh as a burst member with a ready replica, and leaves on delete', async (t) => {
  const root = tempDir(t)
  const key = writeSwarmKey(root)
  const voter = await DaemonProcess.start(t, root, { name: 'voter', swarmKeyFile: key, cluster: 'compliance' })
  const p = provider(t, root, { swarmKeyFile: key })
  const [o] = await p.offerings()
  const inst = await p.create(launch('join-1', o!, { bootstrap: { peers: [voter.joinAddr] } }))
  const { value: member } = await waitFor(async () => (await voter.status()).members.find((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true),
    { timeoutMs: 20_000, what: 'the burst member alive with a ready replica' })
  t.match(member, { name: 'burst-join-1', voter: false, provider: 'workstation', cost_per_hour: 0, instance: { provider: 'workstation', id: inst.id } })
  await p.delete(inst.id)
  await waitFor(async () => (await p.list()).length === 0, { timeoutMs: 20_000, what: 'the node to exit' })
  const m = readManifest(join(root, 'work', 'join-1'))
  t.ok(m?.terminated_at !== null, 'the manifest records it gone (and keeps the key)')
})

t.test('instances outlive their launcher: a new provider object, or a killed process, changes nothing', async (t) => {
  const root = tempDir(t)
  const workDir = join(root, 'work')
  const key = writeSwarmKey(root)
  // A separate process launches one instance, then is killed with SIGKILL.
  const script = join(import.meta.dirname, '../../providers/local/provider.ts')
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { localProvider } = await import(${JSON.stringify(script)})
    const p = localProvider({ name: 'workstation', cluster: 'compliance', workDir: ${JSON.stringify(workDir)}, maxInstances: 4, costPerHour: 0.3, region: 'local', swarmKeyFile: ${JSON.stringify(key)} })
    const [o] = await p.offerings()
    const i = await p.create({ key: 'orphan-1', cluster: 'compliance', offering: o, replica: { models: ['m'], slots: 1, command: 'sim' }, node: { name: 'orphan', config: {} }, bootstrap: { peers: [] } })
    console.log(JSON.stringify(i))
    setInterval(() => {}, 1000)
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  reap(t, workDir)
  t.teardown(() => { child.kill('SIGKILL') })
  const line = await new Promise<string>((resolve) => { child.stdout!.once('data', (d: Buffer) => { resolve(d.toString()) }) })
  const made = JSON.parse(line) as { id: string }
  child.kill('SIGKILL')
  await new Promise((resolve) => child.once('exit', resolve))
  const later = provider(t, root, { workDir, swarmKeyFile: key })
  const listed = await later.list()
  t.same(listed.map((i) => i.id), [made.id], 'a new provider object (a new leader) lists what the dead launcher made')
  t.equal(listed[0]!.state, 'running', 'and it is still running')
  await later.delete(made.id)
  await waitFor(async () => (await later.list()).length === 0, { timeoutMs: 20_000, what: 'the orphan to stop' })
})

t.test('a reused pid is not mistaken for the instance', async (t) => {
  const root = tempDir(t)
  const p = provider(t, root)
  const [o] = await p.offerings()
  const inst = await p.create(launch('pid-1', o!))
  await p.delete(inst.id)
  await waitFor(async () => (await p.list()).length === 0, { timeoutMs: 20_000, what: 'the node to exit' })
  // Pretend its pid now belongs to an unrelated live process (ours) and the record was never closed.
  const dir = join(root, 'work', 'pid-1')
  writeManifest(dir, { ...readManifest(dir)!, pid: process.pid, terminated_at: null, stop_requested_at: null })
  t.same(await p.list(), [], 'a live pid running something else is not our instance')
  t.match(await p.get(inst.id).then(() => null, (e: unknown) => e), { code: 'MESHD_PROVIDER_NOT_FOUND' })
  t.not(readManifest(dir)!.terminated_at, null, 'and the record is closed')
})
