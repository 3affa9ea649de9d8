/**
 * The mesh, end to end: real daemons on loopback, joined in a chain, killed
 * and hung for real. The deadlines are the acceptance bounds of the failure
 * detector (INTERFACE/issue): convergence within 5 s of the last join, a kill
 * noticed within 3 s, a hang within 6 s.
 */
import t, { type Test } from 'tap'
import { tempDir } from '../helpers/tmp.ts'
import { DaemonProcess, startChain, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { aliveOn, notAliveOn } from '../../daemon/localmesh/cluster.ts'

const N = 5

t.test('a chain of five daemons', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const nodes = await startChain(t, root, N, { swarmKeyFile })
  // The middle of the chain: its death must not split the mesh in two.
  const victim = nodes[2]!
  const hung = nodes[3]!

  await t.test('every node lists all five alive within 5 s of the last join', async (t) => { await converges(t, nodes) })
  await t.test('kill -9: every other node stops listing it alive within 3 s', async (t) => { await killNoticed(t, nodes, victim) })
  await t.test('SIGSTOP: every other node stops listing it alive within 6 s; alive again after SIGCONT', async (t) => {
    await hangNoticed(t, nodes.filter((n) => n !== hung && n !== victim), hung)
  })
  await t.test('the killed node restarted from its state dir, with no join: same peer id, alive on all others', async (t) => { await restartRejoins(t, nodes, victim) })
  await t.test('a daemon with another swarm key is never listed', async (t) => { await intruderNeverListed(t, root, nodes) })
  await t.test('a daemon of another cluster with the same swarm key is refused and never listed', async (t) => { await strangerRefused(t, root, swarmKeyFile, nodes) })
})

const idsOf = (nodes: DaemonProcess[]): string[] => nodes.map((n) => n.peerId)

async function converges (t: Test, nodes: DaemonProcess[]): Promise<void> {
  const ids = idsOf(nodes)
  const { ms } = await waitFor(() => aliveOn(nodes, ids), { timeoutMs: 5000, what: 'all five alive on every node' })
  t.pass(`converged ${Math.round(ms)} ms after the last join`)
  const s = await nodes[0]!.status()
  t.equal(s.members.length, N, 'no one else is listed')
  t.equal(s.cluster, 'test')
  const m = s.members.find((x) => x.id === ids[4])!
  t.match(m, { name: 'node-5', voter: true, provider: 'static', region: 'local', spot: false, cost_per_hour: 0, replica: null })
  t.ok(m.addrs.length > 0 && m.addrs[0]!.startsWith('/ip4/127.0.0.1/tcp/'), 'addresses are gossiped')
  t.ok(m.load.cpu >= 0 && m.load.cpu <= 1 && m.load.mem > 0 && m.load.mem <= 1, 'host load from systeminformation is in the heartbeat')
  t.ok(m.last_seen_ms < 3000, 'heard from recently')
}

async function killNoticed (t: Test, nodes: DaemonProcess[], victim: DaemonProcess): Promise<void> {
  const others = nodes.filter((n) => n !== victim)
  victim.kill('SIGKILL')
  const { ms } = await waitFor(() => notAliveOn(others, victim.peerId), { timeoutMs: 3000, intervalMs: 50, what: `${victim.spec.name} not alive anywhere` })
  t.pass(`noticed everywhere after ${Math.round(ms)} ms`)
  t.ok(await aliveOn(others, idsOf(others)), 'the survivors still see each other alive (the chain did not split)')
}

async function hangNoticed (t: Test, watchers: DaemonProcess[], hung: DaemonProcess): Promise<void> {
  hung.kill('SIGSTOP')
  const { ms } = await waitFor(() => notAliveOn(watchers, hung.peerId), { timeoutMs: 6000, intervalMs: 100, what: `${hung.spec.name} not alive anywhere` })
  t.pass(`hang noticed everywhere after ${Math.round(ms)} ms`)
  hung.kill('SIGCONT')
  const back = await waitFor(() => aliveOn(watchers, [hung.peerId]), { timeoutMs: 6000, what: `${hung.spec.name} alive again everywhere` })
  t.pass(`alive again everywhere ${Math.round(back.ms)} ms after SIGCONT`)
}

async function restartRejoins (t: Test, nodes: DaemonProcess[], victim: DaemonProcess): Promise<void> {
  const others = nodes.filter((n) => n !== victim)
  const before = victim.peerId
  await victim.exited()
  await victim.restart()
  t.equal(victim.peerId, before, 'the identity key in the state dir keeps the peer id')
  const { ms } = await waitFor(async () => {
    if (!await aliveOn(others, [victim.peerId])) return false
    return (await victim.status()).members.filter((m) => m.state === 'alive').length === N
  }, { timeoutMs: 10_000, what: 'restarted node alive everywhere and seeing everyone' })
  t.pass(`rejoined from its remembered peers in ${Math.round(ms)} ms`)
}

async function intruderNeverListed (t: Test, root: string, nodes: DaemonProcess[]): Promise<void> {
  const otherKey = writeSwarmKey(root, 'other.key')
  const intruder = await DaemonProcess.start(t, root, { name: 'intruder', swarmKeyFile: otherKey })
  await t.rejects(intruder.call('join', { addrs: [nodes[0]!.joinAddr, nodes[1]!.joinAddr] }, 15_000), /private network handshake failed.*different swarm key/, 'the join fails: the private network refuses the handshake, and says so')
  // Let its dialer keep trying (the join addresses are remembered) before looking.
  await waitFor(async () => (await intruder.metric('meshd_dials_total', { result: 'error' })) >= 2, { timeoutMs: 15_000, what: 'the intruder to fail more dials' })
  await notListedAnywhere(t, nodes, intruder)
  t.equal((await intruder.status()).members.length, 1, 'the intruder sees only itself')
  intruder.kill('SIGKILL')
}

async function strangerRefused (t: Test, root: string, swarmKeyFile: string, nodes: DaemonProcess[]): Promise<void> {
  const stranger = await DaemonProcess.start(t, root, { name: 'stranger', swarmKeyFile, cluster: 'elsewhere' })
  await stranger.call('join', { addrs: [nodes[0]!.joinAddr] }, 15_000).catch(() => {})
  await waitFor(async () => (await nodes[0]!.metric('meshd_peers_refused_total')) + (await stranger.metric('meshd_peers_refused_total')) >= 1,
    { timeoutMs: 10_000, what: 'the cluster gate to close the connection' })
  await notListedAnywhere(t, nodes, stranger)
  t.equal((await stranger.status()).members.length, 1, 'the stranger sees only itself')
  stranger.kill('SIGKILL')
}

async function notListedAnywhere (t: Test, nodes: DaemonProcess[], outsider: DaemonProcess): Promise<void> {
  for (const n of nodes) {
    const s = await n.status()
    t.notOk(s.members.some((m) => m.id === outsider.peerId), `${n.spec.name} does not list the ${outsider.spec.name}`)
  }
}
