/**
 * A pool with no `bundle:` set works with nothing more: the leader's
 * provider (as the daemon builds it, daemon/leader/providers.ts) makes a real
 * bundle on first need in `<state_dir>/bundles/` with esbuild, installs it
 * over SSH on a real sshd and a real meshd burst node runs from it; after a
 * restart (new provider and cache objects, same state dir) the cached file
 * is reused, not built again.
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { BundleCache } from '../../daemon/bundle/cache.ts'
import { buildSsh } from '../../daemon/leader/providers.ts'
import { readBundleFileManifest } from '../../providers/ssh/bundle-file.ts'
import type { LaunchRequest } from '../../providers/types.ts'
import { sshdAvailable } from '../helpers/sshd.ts'
import { startPool } from '../helpers/ssh-pool.ts'

const skip = sshdAvailable()

t.test('a pool without bundle: the leader builds one on first need and reuses it after a restart', { skip }, async (t) => {
  const pool = await startPool(t, 1)
  const s = pool.servers[0]!
  const stateDir = join(pool.root, 'state')
  const config = validateConfig({
    cluster: 'bundlecache',
    state_dir: stateDir,
    swarm_key_file: pool.swarmKey,
    log: { level: 'warn' },
    burst: { ttl: '10m' },
    providers: [{
      name: 'pool', kind: 'ssh', user: 'root', identity_file: pool.identityFile, known_hosts: pool.knownHosts,
      install_dir: join(pool.root, 'opt'), replica: { models: ['m'] }, hosts: [{ ip: s.host, port: s.port }]
    }]
  }, 'test.yaml')
  const p = config.providers[0]!
  if (p.kind !== 'ssh') throw new Error('expected the ssh pool')
  t.equal(p.bundle, undefined, 'no bundle: key')

  type Ssh = Awaited<ReturnType<typeof buildSsh>>
  const start = async (logs: string[]): Promise<Ssh> => {
    const cache = new BundleCache({ dir: join(stateDir, 'bundles'), log: (m) => logs.push(m) })
    return await buildSsh(config, p, { connectTimeoutMs: 5_000, commandTimeoutMs: 30_000 }, async () => cache)
  }
  const launch = async (provider: Ssh, key: string): Promise<string> => {
    const [o] = await provider.offerings()
    const req: LaunchRequest = { key, cluster: 'bundlecache', offering: o!, replica: { models: ['m'], slots: 1, command: 'sim' }, node: { name: key, config: {} }, bootstrap: { peers: [] } }
    const i = await provider.create(req)
    await waitFor(async () => (await provider.get(i.id)).state === 'running', { timeoutMs: 60_000, intervalMs: 200, what: `${key} running` })
    return i.id
  }
  const stop = async (provider: Ssh, id: string): Promise<void> => {
    await provider.delete(id)
    await waitFor(async () => !(await provider.list()).some((i) => i.id === id), { timeoutMs: 60_000, intervalMs: 200, what: `${id} gone` })
  }

  const logs1: string[] = []
  const first = await start(logs1)
  let t0 = performance.now()
  const a = await launch(first, 'cache-1')
  t.comment(`first launch, bundle built on first need: ${Math.round(performance.now() - t0)} ms`)
  t.ok(logs1.some((l) => /making .*\(first launch/.test(l)) && logs1.some((l) => /ready in/.test(l)), `the build is logged: ${logs1.filter((l) => !/esbuild|adding|archiving/.test(l)).join(' | ')}`)
  const cached = readdirSync(join(stateDir, 'bundles')).filter((f) => f.endsWith('.tar.gz'))
  t.equal(cached.length, 1, 'one bundle in the state dir')
  const manifest = await readBundleFileManifest(join(stateDir, 'bundles', cached[0]!))
  const installed = readdirSync(join(pool.root, 'opt', 'releases'))
  t.same(installed, [manifest.contents_sha256], 'that bundle is what the host runs')
  await stop(first, a)

  // A restart: new objects, nothing in memory, the same state dir.
  const logs2: string[] = []
  const second = await start(logs2)
  t0 = performance.now()
  const b = await launch(second, 'cache-2')
  t.comment(`launch after a restart, cached bundle: ${Math.round(performance.now() - t0)} ms`)
  t.ok(logs2.some((l) => /reusing/.test(l)), `reused: ${logs2.join(' | ')}`)
  t.notOk(logs2.some((l) => /making/.test(l)), 'not built again')
  await stop(second, b)
})
