/**
 * The ssh provider against real OpenSSH servers on loopback (each its own
 * sshd, host key and authorized_keys): the provider compliance suite, with
 * real meshd burst nodes started on the "hosts" from a stand-in bundle.
 */
import t from 'tap'
import { join } from 'node:path'
import { validateConfig } from '../../daemon/config/load.ts'
import { sshdAvailable } from '../helpers/sshd.ts'
import { startPool, type Pool } from '../helpers/ssh-pool.ts'
import { runProviderCompliance } from './compliance.ts'
import { sshProvider, type SshProvider, type SshProviderInit } from '../../providers/ssh/index.ts'

const skip = sshdAvailable()

export function poolProvider (pool: Pool, installTag: string, over: Partial<SshProviderInit> = {}): SshProvider {
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
