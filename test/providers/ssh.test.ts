/**
 * The ssh provider against real OpenSSH servers on loopback (each its own
 * sshd, host key and authorized_keys): the provider compliance suite, with
 * real meshd burst nodes started on the "hosts" from a stand-in bundle.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { isInsufficientCapacityError, isProviderUnavailableError, type Instance, type LaunchRequest } from '../../providers/types.ts'
import { validateConfig } from '../../daemon/config/load.ts'
import { sshdAvailable, type Sshd } from '../helpers/sshd.ts'
import { processesUnder, standInBundle, startPool, type Pool } from '../helpers/ssh-pool.ts'
import { readBundleFileManifest } from '../../providers/ssh/bundle-file.ts'
import { shq } from '../../providers/ssh/remote.ts'
import { runProviderCompliance } from './compliance.ts'
import { sshProvider, TOMBSTONE_KEEP_MS, type SshProvider, type SshProviderInit } from '../../providers/ssh/index.ts'

const skip = sshdAvailable()

function poolProvider (pool: Pool, installTag: string, over: Partial<SshProviderInit> = {}): SshProvider {
  return sshProvider({
    name: 'pool',
    cluster: 'compliance',
    user: 'root',
    identityFile: pool.identityFile,
    knownHostsFile: pool.knownHosts,
    installDir: join(pool.root, 'unused'),
    region: 'hel1',
    costPerHour: 0,
    maxInstances: 8,
    // Every "host" is this machine: each gets its own install dir.
    hosts: pool.servers.map((s, i) => ({ ip: s.host, port: s.port, installDir: join(pool.root, `${installTag}-h${i + 1}`) })),
    bundleFor: async () => pool.bundle,
    swarmKeyFile: pool.swarmKey,
    validateConfig,
    defaults: { log: { level: 'warn' }, burst: { ttl: '10m', lost_mesh_grace: '3m' } },
    connectTimeoutMs: 5_000,
    commandTimeoutMs: 15_000,
    ...over
  })
}

t.test('compliance', { skip }, async (t) => {
  const pool = await startPool(t, 3)
  let n = 0
  await runProviderCompliance(t, () => {
    const p = poolProvider(pool, `c${++n}`)
    return {
      provider: p,
      cluster: 'compliance',
      otherCluster: 'elsewhere',
      unavailableOffering: async () => ({ ...(await p.offerings())[0]!, region: 'elsewhere' })
    }
  }, { settleMs: 30_000 })
})

async function launchOne (p: SshProvider, key: string): Promise<Instance> {
  const [o] = await p.offerings()
  const req: LaunchRequest = { key, cluster: 'compliance', offering: o!, replica: { models: ['m'], slots: 1, command: 'sim' }, node: { name: `burst-${key}`, config: {} }, bootstrap: { peers: [] } }
  return await p.create(req)
}

async function stopAndWait (p: SshProvider, id: string): Promise<void> {
  await p.delete(id)
  await waitFor(async () => !(await p.list()).some((i) => i.id === id), { timeoutMs: 30_000, intervalMs: 200, what: `${id} gone` })
}

/** How many SFTP sessions the server has seen: one per bundle upload. */
function uploads (s: Sshd): number {
  return s.log().split('\n').filter((l) => /subsystem.*sftp/.test(l)).length
}

/** The bundle's contents digest (its manifest): what a release on the host is named by. */
async function digestOf (bundle: string): Promise<string> {
  return (await readBundleFileManifest(bundle)).contents_sha256
}

/** The same contents archived again with other bytes (gzip level 1): what rebuilding the same sources may give. */
function rearchived (bundle: string, out: string): string {
  execFileSync('sh', ['-c', `gzip -dc ${shq(bundle)} | gzip -1 > ${shq(out)}`])
  return out
}

t.test('install: uploaded once, skipped when installed (warm) or rebuilt the same, upgraded in place when the bundle changes, old releases pruned', { skip }, async (t) => {
  const pool = await startPool(t, 1)
  const s = pool.servers[0]!
  const dir = join(pool.root, 'inst-h1')
  let bundle = pool.bundle
  const p = poolProvider(pool, 'inst', { bundleFor: async () => bundle })
  let t0 = performance.now()
  const a = await launchOne(p, 'install-1')
  t.comment(`cold launch (bundle upload): ${Math.round(performance.now() - t0)} ms`)
  t.equal(uploads(s), 1, 'the bundle was uploaded')
  if (uploads(s) !== 1) t.comment(s.log().split('\n').filter((l) => l.includes('session') || l.includes('sftp')).join('\n'))
  const sha1 = createHash('sha256').update(readFileSync(pool.bundle)).digest('hex')
  const d1 = await digestOf(pool.bundle)
  t.equal(readlinkSync(join(dir, 'current')), `releases/${d1}`, "current points at releases/<the manifest's contents digest>")
  t.match(JSON.parse(readFileSync(join(dir, 'installed.json'), 'utf8')), { sha256: sha1, contents_sha256: d1, version: '0.1.0-v1' })
  // Secrets and modes on the host.
  const b = join(dir, 'burst', 'install-1')
  t.equal(statSync(join(b, 'swarm.key')).mode & 0o777, 0o600, 'swarm.key is 0600')
  t.equal(statSync(join(b, 'meshd.json')).mode & 0o777, 0o600, 'meshd.json is 0600')
  t.equal(readFileSync(join(b, 'swarm.key'), 'utf8'), readFileSync(pool.swarmKey, 'utf8'), "the leader's swarm key")
  const cfg = JSON.parse(readFileSync(join(b, 'meshd.json'), 'utf8')) as Record<string, unknown>
  t.match(cfg, { voter: false, cluster: 'compliance', instance: { provider: 'pool', id: a.id, key: 'install-1' }, burst: { ttl: '10m' }, swarm_key_file: join(b, 'swarm.key') })
  t.match(JSON.parse(readFileSync(join(b, 'key.json'), 'utf8')), { key: 'install-1', id: a.id, cluster: 'compliance' }, 'the key file beside the config')
  const key = readFileSync(pool.swarmKey, 'utf8').trim().split('\n').pop()!
  t.notOk(s.log().includes(key), 'the swarm key is in no sshd log line')
  await stopAndWait(p, a.id)
  t.notOk(existsSync(join(b, 'swarm.key')) || existsSync(join(b, 'meshd.json')), 'config and swarm key removed once the node is gone')
  t.ok(existsSync(join(b, 'key.json')), 'the key file stays: the key is never launched again')

  t0 = performance.now()
  const w = await launchOne(p, 'install-2')
  t.comment(`warm launch (already installed): ${Math.round(performance.now() - t0)} ms`)
  t.equal(uploads(s), 1, 'same bundle: no upload')
  await stopAndWait(p, w.id)

  // The same contents in other archive bytes (a rebuild): same digest, no upload.
  bundle = rearchived(pool.bundle, join(pool.root, 'bundle-v1-again.tar.gz'))
  t.not(createHash('sha256').update(readFileSync(bundle)).digest('hex'), sha1, 'the rebuilt archive has another sha256')
  const r = await launchOne(p, 'install-2b')
  t.equal(uploads(s), 1, 'same contents digest: no upload')
  await stopAndWait(p, r.id)

  bundle = standInBundle(pool.root, 'v2')
  const d2 = await digestOf(bundle)
  const u = await launchOne(p, 'install-3')
  t.equal(uploads(s), 2, 'a changed bundle is uploaded')
  t.equal(readlinkSync(join(dir, 'current')), `releases/${d2}`, 'current switched to the new release')
  t.match(JSON.parse(readFileSync(join(dir, 'installed.json'), 'utf8')), { sha256: createHash('sha256').update(readFileSync(bundle)).digest('hex'), contents_sha256: d2, version: '0.1.0-v2' })
  t.ok(existsSync(join(dir, 'releases', d1)), 'the release before stays')
  t.same(readdirSync(dir).filter((n) => n.startsWith('.')), [], 'no temporary left')
  await stopAndWait(p, u.id)

  bundle = standInBundle(pool.root, 'v3')
  const d3 = await digestOf(bundle)
  const v = await launchOne(p, 'install-4')
  t.equal(uploads(s), 3, 'v3 uploaded')
  t.same(readdirSync(join(dir, 'releases')).sort(), [d2, d3].sort(), 'releases pruned to current and the one before')
  await stopAndWait(p, v.id)
})

t.test('a full disk: the install fails at its step, the host is left clean and cooled down', { skip }, async (t) => {
  const pool = await startPool(t, 1)
  const dir = join(pool.root, 'full-h1')
  mkdirSync(dir)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir])
  t.teardown(() => { spawnSync('umount', ['-l', dir]) })
  // Bigger than the tmpfs: random bytes do not compress.
  const bundle = standInBundle(pool.root, 'big', { payloadBytes: 256 * 1024, launcher: '#!/bin/sh\nexit 0\n' })
  const p = poolProvider(pool, 'full', { hosts: [{ ip: pool.servers[0]!.host, port: pool.servers[0]!.port, installDir: dir }], bundleFor: async () => bundle })
  let err: unknown
  try { await launchOne(p, 'full-1') } catch (e) { err = e }
  t.ok(isInsufficientCapacityError(err), 'the launch is refused (no host could take it)')
  t.match(String((err as Error).message), /: (upload|install): /, `the failed step is named: ${(err as Error).message}`)
  t.same(readdirSync(dir).filter((n) => n !== 'burst'), [], 'no upload, release or temporary left')
  t.same(readdirSync(join(dir, 'burst')), [], 'the claim was given back')
  const cool = p.coolingDown()
  t.equal(cool.length, 1, 'the host is cooling down')
  t.equal((await p.offerings())[0]?.capacity, 0, 'and not offered meanwhile')
})

t.test('a new leader adopts through list(): the same key gives the same node; a claim whose launcher died is closed', { skip }, async (t) => {
  const pool = await startPool(t, 2)
  const first = poolProvider(pool, 'adopt')
  const a = await launchOne(first, 'adopt-1')
  // Another provider object (a new leader, nothing in memory) on the same pool.
  const second = poolProvider(pool, 'adopt')
  const listed = await second.list()
  t.same(listed.map((i) => i.id), [a.id], 'the new leader lists the node')
  const again = await launchOne(second, 'adopt-1')
  t.equal(again.id, a.id, 'creating the same key again gives that node, not a second one')
  t.equal((await second.list()).length, 1, 'still one')

  // A launcher that died right after claiming a key on h2 (no process was started).
  const dir = join(pool.root, 'adopt-h2', 'burst', 'adopt-2')
  mkdirSync(dir, { recursive: true })
  const h2 = `${pool.servers[1]!.host}:${pool.servers[1]!.port}`
  const rec = { v: 1, key: 'adopt-2', id: `${h2}/adopt-2`, cluster: 'compliance', provider: 'pool', region: 'hel1', node_name: 'burst-adopt-2', host: h2, launched_at: Date.now(), price_per_hour: 0, stop_grace_ms: 60_000, started_at: null, stop_requested_at: null, killed_at: null, terminated_at: null, address: null, note: null }
  writeFileSync(join(dir, 'key.json'), JSON.stringify(rec))
  t.equal((await second.get(rec.id)).state, 'pending', 'a fresh claim is a launch under way (pending)')
  const later = poolProvider(pool, 'adopt', { now: () => Date.now() + 16 * 60_000 })
  t.notOk((await later.list()).some((i) => i.id === rec.id), 'once stale, it is not listed')
  t.match(JSON.parse(readFileSync(join(dir, 'key.json'), 'utf8')), { terminated_at: Number, note: 'the launch did not finish' }, 'closed as terminated on the host')
  const re = await launchOne(later, 'adopt-2')
  t.equal(re.state, 'terminated', 'and its key is never launched again')
  await stopAndWait(second, a.id)
  const aDir = join(pool.root, 'adopt-h1', 'burst', 'adopt-1')
  t.ok(existsSync(join(aDir, 'key.json')), 'a terminated launch keeps its record …')
  await poolProvider(pool, 'adopt', { now: () => Date.now() + TOMBSTONE_KEEP_MS - 60_000 }).list()
  t.ok(existsSync(join(aDir, 'key.json')) && existsSync(join(dir, 'key.json')), '… for TOMBSTONE_KEEP_MS …')
  await poolProvider(pool, 'adopt', { now: () => Date.now() + TOMBSTONE_KEEP_MS + 16 * 60_000 }).list()
  t.notOk(existsSync(aDir) || existsSync(dir), '… then the records are removed from the hosts')
})

t.test('a connection cut mid-upload: the old install keeps working; the next launch completes the upgrade', { skip }, async (t) => {
  const pool = await startPool(t, 1)
  const s = pool.servers[0]!
  const dir = join(pool.root, 'cut-h1')
  let bundle = pool.bundle
  // No cool-down: the host is used again as soon as it is back.
  const p = poolProvider(pool, 'cut', { bundleFor: async () => bundle, cooldownMs: 0 })
  const a = await launchOne(p, 'cut-1')
  await stopAndWait(p, a.id)
  const before = readlinkSync(join(dir, 'current'))
  // A big v2 (random bytes do not compress), so the upload takes a while.
  bundle = standInBundle(pool.root, 'v2big', { payloadBytes: 64 * 1024 * 1024 })
  const launching = launchOne(p, 'cut-2').then(() => null, (e: unknown) => e)
  await waitFor(() => readdirSync(dir).some((n) => n.startsWith('.upload-')), { timeoutMs: 30_000, intervalMs: 5, what: 'the upload to begin' })
  await s.stop() // the cable pulled: sshd and every session killed
  const err = await launching
  t.ok(isInsufficientCapacityError(err), `the launch fails: ${String(err)}`)
  t.match(String((err as Error).message), /upload/, 'at the upload step')
  t.equal(readlinkSync(join(dir, 'current')), before, 'current still points at the old release')
  t.ok(existsSync(join(dir, before, 'bin', 'meshd')), 'which is whole')
  t.same(readdirSync(join(dir, 'releases')).filter((n) => n.startsWith('.')), [], 'no half-unpacked release')
  const leftover = readdirSync(dir).filter((n) => n.startsWith('.upload-'))
  t.equal(leftover.length, 1, 'the cut upload is left behind (no one to remove it) …')
  for (const f of leftover) execFileSync('touch', ['-d', '1 hour ago', join(dir, f)])
  t.ok(existsSync(join(dir, 'burst', 'cut-2')), 'so is its claim (to another leader: a launch under way, for 15 min) …')
  await s.start()
  const b = await launchOne(p, 'cut-3')
  t.notOk(existsSync(join(dir, 'burst', 'cut-2')), '… which the leader that made it removes once the host answers again')
  t.match(JSON.parse(readFileSync(join(dir, 'installed.json'), 'utf8')), { version: '0.1.0-v2big' }, 'the next launch completes the upgrade')
  t.same(readdirSync(dir).filter((n) => n.startsWith('.upload-')), [], '… and removed by the next install once stale')
  await stopAndWait(p, b.id)
})

t.test('a host that cannot be reached never makes its live node look gone: list() is unavailable, naming the host, until it answers', { skip }, async (t) => {
  const pool = await startPool(t, 2)
  const p = poolProvider(pool, 'down')
  const a = await launchOne(p, 'down-1')
  await waitFor(async () => (await p.get(a.id)).state === 'running', { timeoutMs: 30_000, intervalMs: 200, what: 'down-1 running' })
  const h = pool.servers.find((s) => a.id.startsWith(`${s.host}:${s.port}/`))!
  await h.stop() // sshd and its sessions killed; the node, in its own session, runs on (a partition, not a crash)
  t.ok(processesUnder(pool.root).length > 0, 'the node still runs')
  const err = await p.list().then(() => null, (e: unknown) => e)
  t.ok(isProviderUnavailableError(err), `list() rejects as unavailable: ${String(err)}`)
  t.match(String((err as Error).message), `${h.host}:${h.port}`, 'naming the host')
  t.ok(isProviderUnavailableError(await p.get(a.id).then(() => null, (e: unknown) => e)), 'get() is unavailable too, not "not found"')
  await h.start()
  const back = await p.list()
  t.same(back.map((i) => [i.id, i.state]), [[a.id, 'running']], 'once it answers, the same node is listed, running')
  await stopAndWait(p, a.id)
})
