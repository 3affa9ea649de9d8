/**
 * Partitions between separate hosts (network namespaces joined by a bridge;
 * a cable is pulled by taking a host's bridge port down, so nothing is reset:
 * the other side just goes silent).
 *
 * - Three voters; the leader's host is cut off. The majority side elects a
 *   new leader; the minority side has no acting leader and bursts nothing
 *   (a burst asked of it is refused). On healing, the minority (lower term)
 *   follows the majority's leader.
 * - A burst node cut off from every voter retires itself after
 *   burst.lost_mesh_grace: no spend orphaned by a partition.
 */
import t from 'tap'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { DaemonProcess, startJoined, writeSwarmKey } from '../helpers/daemon.ts'
import { Lan, netnsAvailable } from '../helpers/netns.ts'
import { meshd } from '../helpers/cli.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { agreedLeader, statuses } from '../../daemon/localmesh/cluster.ts'

const skip = netnsAvailable()

t.test('a minority partition elects no one and bursts nothing; healing restores one leader', { skip }, async (t) => {
  const root = tempDir(t)
  const lan = new Lan(t, 3)
  const swarmKeyFile = writeSwarmKey(root)
  const work = join(root, 'work')
  const nodes = await startJoined(t, root, lan.hosts.map((h, i) => ({
    name: `v${i + 1}`, swarmKeyFile, prefix: lan.exec(h), host: h.ip,
    config: { providers: [{ name: 'workstation', kind: 'local', cost_per_hour: 0.3, max_instances: 4, work_dir: join(work, `v${i + 1}`), replica: { models: ['m'], slots: 1, command: 'sim' } }] }
  })), 'chain')
  const agree = async (group: DaemonProcess[]): Promise<string | null> => agreedLeader(await statuses(group), 3)?.leader ?? null
  const { value: first } = await waitFor(() => agree(nodes), { timeoutMs: 15_000, what: 'one leader' })
  const cut = nodes.find((n) => n.peerId === first)!
  const rest = nodes.filter((n) => n !== cut)
  const termBefore = (await cut.status()).term

  lan.cut(lan.hosts[nodes.indexOf(cut)]!)
  const { value: second, ms } = await waitFor(async () => {
    const l = await agree(rest)
    return l !== null && l !== first ? l : null
  }, { timeoutMs: 10_000, what: 'the majority side to elect a new leader' })
  t.pass(`the majority elected a new leader (${rest.find((n) => n.peerId === second)!.spec.name}) after ${Math.round(ms)} ms`)

  // The minority side: its old leader loses its lease and stops claiming to lead.
  await waitFor(async () => (await cut.status()).leader === null, { timeoutMs: 5000, what: 'the cut-off leader to stop claiming to lead' })
  t.equal((await cut.status()).leader, null, 'no leader on the minority side')
  const { value: why } = await waitFor(async () => {
    const r = String((await cut.status()).election?.reason ?? '')
    return /^no_quorum/.test(r) ? r : null
  }, { timeoutMs: 10_000, what: 'status to say quorum is lost' })
  t.match(why, /^no_quorum: 1 of 3 voters reachable, 2 needed$/, `status says why: ${why}`)
  const burst = await meshd(['burst', '--count', '1', '--json', '--config', cut.configPath], { timeoutMs: 90_000 })
  t.equal(burst.code, 1, 'a burst asked on the minority side fails')
  t.match(burst.stderr, /no leader/, burst.stderr)

  lan.heal(lan.hosts[nodes.indexOf(cut)]!)
  const { value: healed } = await waitFor(() => agree(nodes), { timeoutMs: 20_000, what: 'one leader again after healing' })
  t.equal(healed, second, 'the majority\'s leader stays; the old one follows it')
  t.ok((await cut.status()).term > termBefore, 'the minority node moved to the newer term')
})

t.test('a burst node cut off from every voter retires itself after lost_mesh_grace', { skip }, async (t) => {
  const root = tempDir(t)
  const lan = new Lan(t, 2)
  const swarmKeyFile = writeSwarmKey(root)
  const [hv, hb] = lan.hosts
  const voter = await DaemonProcess.start(t, root, { name: 'voter', swarmKeyFile, prefix: lan.exec(hv!), host: hv!.ip })
  const burst = await DaemonProcess.start(t, root, {
    name: 'burst', swarmKeyFile, prefix: lan.exec(hb!), host: hb!.ip,
    config: {
      voter: false,
      provider: 'workstation',
      instance: { provider: 'workstation', id: 'local-test-1', key: 'test-1', launched_at: Date.now() },
      burst: { lost_mesh_grace: '4s', ttl: '1h', idle_timeout: '1h' },
      mesh: { listen: [`/ip4/${hb!.ip}/tcp/0`], bootstrap: [voter.joinAddr] }
    }
  })
  await waitFor(async () => (await voter.status()).members.some((m) => m.id === burst.peerId && m.state === 'alive'), { timeoutMs: 15_000, what: 'the burst node to join' })
  await waitFor(async () => burst.running && (await burst.status()).members.some((m) => m.id === voter.peerId && m.state === 'alive'), { timeoutMs: 5000, what: 'the burst node to see the voter' })
  t.pass('connected: the burst node sees the voter alive')
  const cutAt = performance.now()
  lan.cut(hb!)
  const exit = await burst.exited()
  const after = performance.now() - cutAt
  t.same(exit, { code: 0, signal: null }, 'it drained and exited 0')
  t.ok(after >= 4000, `not before the grace (${Math.round(after)} ms)`)
  t.ok(after < 4000 + 10_000, `soon after the grace: ${Math.round(after)} ms (dead after 3.5 s of silence, then 4 s, checked every 2 s)`)
  t.ok(burst.logs.some((l) => /burst node retiring: no voter heard/.test(l.msg)), 'it said why')
})
