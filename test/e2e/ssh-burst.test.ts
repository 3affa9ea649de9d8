/**
 * The leader bursts through an SSH pool: three voters on this machine (on
 * the bridge address, so the pool hosts reach them), two pool hosts in
 * network namespaces each running its own sshd. `meshd burst --count 2
 * --provider pool --wait` is granted; both hosts run a burst meshd that
 * joins, becomes ready and takes traffic through a voter's front door;
 * `burst --terminate --all` drains them and nothing of meshd keeps running
 * on the hosts.
 *
 * The hosts get the stand-in bundle (test/helpers/ssh-pool.ts); with
 * SSH_E2E_BUNDLE=FILE (a tar.gz from `meshd bundle`) they get that one
 * instead, for BENCHMARKS.md's burst-to-ready figure from a real bundle.
 */
import t from 'tap'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tempDir } from '../helpers/tmp.ts'
import { startJoined } from '../helpers/daemon.ts'
import { Lan, netnsAvailable } from '../helpers/netns.ts'
import { sshdAvailable } from '../helpers/sshd.ts'
import { startPool, poolProvider } from '../helpers/ssh-pool.ts'
import { meshd } from '../helpers/cli.ts'
import { waitReadyBurst, servedBy } from '../helpers/burst.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { agreedLeader, statuses } from '../../daemon/localmesh/cluster.ts'

const skip = netnsAvailable() || sshdAvailable()

/** meshd burst nodes inside a namespace (their command line names their config). */
function meshdIn (ns: string): number {
  return inNs(ns).filter(isNode).length
}

/** What is left of meshd on a host: nodes, and stop watchdogs (sh -c '… kill -KILL …'). */
function leftIn (ns: string): string[] {
  return inNs(ns).filter((c) => isNode(c) || c.includes('kill -KILL'))
}

/** A meshd node (not the leader's remote shells, which mention the config too). */
function isNode (cmd: string): boolean {
  return / start --config \S+\/meshd\.json/.test(cmd) && !cmd.startsWith('sh ') && !cmd.startsWith('bash ')
}

function inNs (ns: string): string[] {
  const pids = spawnSync('ip', ['netns', 'pids', ns]).stdout.toString().split('\n').filter(Boolean)
  return pids.map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ') } catch { return '' } })
}

t.test('burst --count 2 through an SSH pool of two hosts in namespaces', { skip }, async (t) => {
  const root = tempDir(t)
  const lan = new Lan(t, 2)
  const pool = await startPool(t, 2, { netns: lan.hosts.map((h) => ({ ns: h.ns, ip: h.ip })) })
  const here = lan.hostIp
  const replica = { models: ['llama3'], slots: 2, command: 'sim', sim: { ttft_ms: 20, tokens_per_second: 200, max_tokens: 8 } }
  const config = {
    replica,
    burst: { cost_budget: 1.0, check_interval: '2s', ttl: '10m' },
    providers: [poolProvider(pool, {
      bundle: process.env.SSH_E2E_BUNDLE ?? pool.bundle,
      max_instances: 2,
      replica: { models: ['llama3'], slots: 2, command: 'sim', sim: replica.sim },
      hosts: lan.hosts.map((h, i) => ({ ip: h.ip, install_dir: join(pool.root, `opt-h${i + 1}`) }))
    })]
  }
  const nodes = await startJoined(t, root, ['v1', 'v2', 'v3'].map((name) => ({ name, swarmKeyFile: pool.swarmKey, host: here, config })), 'chain')
  await waitFor(async () => agreedLeader(await statuses(nodes), 3)?.leader ?? null, { timeoutMs: 20_000, what: 'one leader' })

  const t0 = performance.now()
  const r = await meshd(['burst', '--count', '2', '--provider', 'pool', '--wait', '--json', '--config', nodes[1]!.configPath], { timeoutMs: 180_000 })
  t.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
  if (r.code !== 0) {
    const c = await meshd(['pool', 'check', '--config', nodes[0]!.configPath])
    t.comment(c.stdout, c.stderr)
    t.comment(nodes.flatMap((n) => n.logs.filter((l) => JSON.stringify(l).includes('pool')).map((l) => JSON.stringify(l))).slice(-10).join('\n'))
    return
  }
  const doc = JSON.parse(r.stdout) as { decision: string, granted: number, provider: string }
  t.match(doc, { decision: 'granted', granted: 2, provider: 'pool' })
  const burst = await waitReadyBurst(nodes[0]!, 2)
  t.pass(`burst to two ready members in ${Math.round(performance.now() - t0)} ms`)
  for (const h of lan.hosts) t.equal(meshdIn(h.ns), 1, `one burst meshd runs on ${h.ip}`)

  const check = await meshd(['pool', 'check', '--json', '--config', nodes[0]!.configPath])
  t.equal(check.code, 0, check.stderr)
  const rows = (JSON.parse(check.stdout) as { pools: Array<{ hosts: Array<{ host: string, facts: { installed: unknown } | null, nodes: Array<{ state: string }> }> }> }).pools[0]!.hosts
  t.same(rows.map((h) => h.nodes.map((n) => n.state)), [['running'], ['running']], 'pool check lists each host with its running burst node')
  t.ok(rows.every((h) => h.facts?.installed !== null), 'and meshd installed')
  t.ok(check.ms < 5_000, `pool check in under 5 s (${Math.round(check.ms)} ms)`)

  const served = await servedBy(nodes[2]!.url)
  const ids = new Set(burst.map((m) => m.id))
  t.ok([...served].some((id) => ids.has(id)), `pool hosts take traffic (${[...served].filter((id) => ids.has(id)).length} of 2 served)`)

  const term = await meshd(['burst', '--terminate', '--all', '--json', '--config', nodes[0]!.configPath], { timeoutMs: 90_000 })
  t.equal(term.code, 0, term.stderr)
  const secret = readFileSync(pool.swarmKey, 'utf8').trim().split('\n').pop()!
  t.notOk(nodes.some((n) => JSON.stringify(n.logs).includes(secret)), 'the swarm key is in no voter log')
  t.notOk(nodes.some((n) => JSON.stringify(n.logs).includes(readFileSync(pool.identityFile, 'utf8').split('\n')[1]!)), 'nor the identity file')
  const { ms } = await waitFor(() => lan.hosts.every((h) => leftIn(h.ns).length === 0), { timeoutMs: 90_000, intervalMs: 200, what: 'no meshd (nor its stop watchdog) left on the pool hosts' })
  t.pass(`nothing of meshd keeps running on the hosts (${Math.round(ms)} ms after terminate)`)
})
