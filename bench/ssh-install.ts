/**
 * bench/ssh-install: what a burst node over SSH costs in time, against a real
 * sshd on loopback (test/helpers/sshd.ts; needs root and openssh-server):
 * a cold launch (bundle uploaded and unpacked, node started), a warm launch
 * (same bundle already installed), and delete → gone; medians over runs.
 * Figures, never pass/fail. Loopback hides the network: a cold launch over a
 * real link adds the bundle's size divided by the link's speed.
 *
 *   node_modules/.bin/node bench/ssh-install.ts [--runs 5] [--bundle FILE]
 *
 * Without --bundle, a stand-in bundle (laid out as a real one, but its
 * bin/meshd execs this checkout's) is used: its upload is near zero and its
 * node runs TypeScript; pass a real one (`meshd bundle`) to measure the
 * upload and unpack of a full bundle and a node running from it.
 */
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { statSync } from 'node:fs'
import { validateConfig } from '../daemon/config/load.ts'
import { waitFor } from '../daemon/localmesh/poll.ts'
import { startPool } from '../test/helpers/ssh-pool.ts'
import { sshdAvailable } from '../test/helpers/sshd.ts'
import { sshProvider, type SshProvider } from '../providers/ssh/index.ts'
import type { LaunchRequest } from '../providers/types.ts'
import { median, fmtMs } from './stats.ts'
import { readBundleFileManifest } from '../providers/ssh/bundle-file.ts'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, bundle: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
if (values.help === true) {
  console.log('usage: node_modules/.bin/node bench/ssh-install.ts [--runs 5] [--bundle FILE]')
  process.exit(0)
}
const why = sshdAvailable()
if (why !== false) { console.error(`bench/ssh-install: ${why}`); process.exit(1) }

const teardowns: Array<() => void | Promise<void>> = []
const t = { teardown: (fn: () => void | Promise<void>) => { teardowns.push(fn) } }
const cleanup = async (): Promise<void> => { for (const fn of teardowns.reverse()) { try { await fn() } catch {} } }
process.on('SIGINT', () => { void cleanup().then(() => process.exit(130)) })

const runs = Number(values.runs)
const pool = await startPool(t, 1)
const bundle = values.bundle ?? pool.bundle
const s = pool.servers[0]!

function provider (installDir: string): SshProvider {
  return sshProvider({
    name: 'bench', cluster: 'bench', user: 'root', identityFile: pool.identityFile, knownHostsFile: pool.knownHosts,
    installDir, region: 'ssh', costPerHour: 0, maxInstances: 1,
    hosts: [{ ip: s.host, port: s.port }], bundleFor: async () => bundle, swarmKeyFile: pool.swarmKey, validateConfig,
    defaults: { log: { level: 'warn' }, burst: { ttl: '10m' } }
  })
}

async function launch (p: SshProvider, key: string): Promise<{ ms: number, id: string }> {
  const [o] = await p.offerings()
  const req: LaunchRequest = { key, cluster: 'bench', offering: o!, replica: { models: ['m'], slots: 1, command: 'sim' }, node: { name: key, config: {} }, bootstrap: { peers: [] } }
  const t0 = performance.now()
  const i = await p.create(req)
  await waitFor(async () => (await p.get(i.id)).state === 'running', { timeoutMs: 60_000, intervalMs: 50, what: `${key} running` })
  return { ms: performance.now() - t0, id: i.id }
}

async function gone (p: SshProvider, id: string): Promise<number> {
  const t0 = performance.now()
  await p.delete(id)
  await waitFor(async () => !(await p.list()).some((i) => i.id === id), { timeoutMs: 60_000, intervalMs: 50, what: `${id} gone` })
  return performance.now() - t0
}

const cold: number[] = []
const warm: number[] = []
const stop: number[] = []
try {
  for (let r = 0; r < runs; r++) {
    const p = provider(join(pool.root, `run${r}`)) // a fresh install dir: nothing installed
    const a = await launch(p, `cold-${r}`)
    cold.push(a.ms)
    stop.push(await gone(p, a.id))
    const b = await launch(p, `warm-${r}`)
    warm.push(b.ms)
    stop.push(await gone(p, b.id))
  }
  const m = await readBundleFileManifest(bundle)
  console.log(`bundle ${bundle} (${(statSync(bundle).size / 1e6).toFixed(1)} MB, meshd ${m.version} linux-${m.arch}), ${runs} runs, sshd on loopback`)
  console.log(`launch to running, cold (upload + unpack + start): median ${fmtMs(median(cold))}`)
  console.log(`launch to running, warm (already installed):      median ${fmtMs(median(warm))}`)
  console.log(`delete to gone (SIGTERM, drain, cleanup):         median ${fmtMs(median(stop))}`)
} finally {
  await cleanup()
}
