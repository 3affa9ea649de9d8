/**
 * The ssh provider against real OpenSSH servers on loopback (each its own
 * sshd, host key and authorized_keys): the provider compliance suite, with
 * real meshd burst nodes started on the "hosts" from a stand-in bundle.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { isInsufficientCapacityError, type Instance, type LaunchRequest } from '../../providers/types.ts'
import { validateConfig } from '../../daemon/config/load.ts'
import { sshdAvailable, type Sshd } from '../helpers/sshd.ts'
import { standInBundle, startPool, type Pool } from '../helpers/ssh-pool.ts'
import { runProviderCompliance } from './compliance.ts'
import { sshProvider, type SshProvider, type SshProviderInit } from '../../providers/ssh/index.ts'

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

t.test('compliance', { skip: skip || (process.env.SKIP_COMPLIANCE === '1' ? 'SKIP_COMPLIANCE' : false) }, async (t) => {
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

t.test('install: uploaded once, skipped when installed (warm), upgraded in place when the bundle changes', { skip }, async (t) => {
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
  t.equal(readlinkSync(join(dir, 'current')), `releases/${sha1}`, 'current points at releases/<sha256>')
  t.match(JSON.parse(readFileSync(join(dir, 'installed.json'), 'utf8')), { sha256: sha1, version: '0.1.0-v1' })
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

  bundle = standInBundle(pool.root, 'v2')
  const sha2 = createHash('sha256').update(readFileSync(bundle)).digest('hex')
  const u = await launchOne(p, 'install-3')
  t.equal(uploads(s), 2, 'a changed bundle is uploaded')
  t.equal(readlinkSync(join(dir, 'current')), `releases/${sha2}`, 'current switched to the new release')
  t.match(JSON.parse(readFileSync(join(dir, 'installed.json'), 'utf8')), { sha256: sha2, version: '0.1.0-v2' })
  t.ok(existsSync(join(dir, 'releases', sha1)), 'the old release stays (a node may still run from it)')
  t.same(readdirSync(dir).filter((n) => n.startsWith('.')), [], 'no temporary left')
  await stopAndWait(p, u.id)
})

t.test('a full disk: the install fails at its step, the host is left clean and cooled down', { skip }, async (t) => {
  const pool = await startPool(t, 1)
  const dir = join(pool.root, 'full-h1')
  mkdirSync(dir)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir])
  t.teardown(() => { spawnSync('umount', ['-l', dir]) })
  // Bigger than the tmpfs: random bytes do not compress.
  const big = join(pool.root, 'bundle-src-big')
  mkdirSync(join(big, 'bin'), { recursive: true })
  writeFileSync(join(big, 'bin', 'meshd'), '#!/bin/sh\nexit 0\n', { mode: 0o755 })
  writeFileSync(join(big, 'payload'), randomBytes(256 * 1024))
  const bundle = join(pool.root, 'big.tar.gz')
  execFileSync('tar', ['-czf', bundle, '-C', big, '.'])
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
