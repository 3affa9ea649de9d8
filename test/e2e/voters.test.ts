/**
 * The voter set end to end, with real daemons on loopback and a local
 * provider for `burst`:
 *
 * - two voters, `meshd leave` on the leader: the leader commits its own
 *   removal before it goes, so the survivor is a one-voter group with a
 *   leader within 5 s, and `burst` works there (before the fix the survivor
 *   still counted the leaver: "no_quorum: 1 of 2 voters reachable");
 * - three voters, one killed: `leave` on the leader is refused (its removal
 *   could not commit without the dead voter) and the daemon stays, leading;
 * - then the leader killed too: `voters reset --force` on the last one makes
 *   it the only voter, it leads and bursts; a killed voter restarted yields
 *   to the new group and is added again.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { startJoined, writeSwarmKey, type DaemonProcess } from '../helpers/daemon.ts'
import { reapBurst } from '../helpers/burst.ts'
import { meshd } from '../helpers/cli.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { agreedLeader, statuses } from '../../daemon/localmesh/cluster.ts'

function specs (root: string, workDir: string, names: string[]): Array<{ name: string, swarmKeyFile: string, config: Record<string, unknown> }> {
  const swarmKeyFile = writeSwarmKey(root)
  const sim = { ttft_ms: 20, tokens_per_second: 100, max_tokens: 8 }
  const config = {
    replica: { models: ['llama3'], slots: 4, command: 'sim', sim },
    burst: { cost_budget: 1.0, check_interval: '2s' },
    providers: [{ name: 'workstation', kind: 'local', cost_per_hour: 0.3, max_instances: 2, work_dir: workDir, replica: { models: ['llama3'], slots: 4, command: 'sim', sim } }]
  }
  return names.map((name) => ({ name, swarmKeyFile, config }))
}

/** The leader all of `nodes` name with `voters` voters (one of them: a removed leader may still be named until the next election). */
async function agreed (nodes: DaemonProcess[], voters: number, timeoutMs: number): Promise<{ leader: DaemonProcess, ms: number }> {
  const { value, ms } = await waitFor(async () => {
    const a = agreedLeader(await statuses(nodes), voters)
    return a !== null && nodes.some((n) => n.peerId === a.leader) ? a : null
  }, { timeoutMs, what: `one leader of ${voters} voter(s) among ${nodes.map((n) => n.spec.name).join(', ')}` })
  return { leader: nodes.find((n) => n.peerId === value.leader)!, ms }
}

async function burstWorks (t: Test, node: DaemonProcess): Promise<void> {
  const r = await meshd(['burst', '--count', '1', '--json', '--config', node.configPath], { timeoutMs: 60_000 })
  t.equal(r.code, 0, `burst answered: ${r.stderr}`)
  t.match(JSON.parse(r.stdout), { requested: 1, granted: 1, decision: 'granted', provider: 'workstation' }, 'burst granted by the one-voter group')
  const off = await meshd(['burst', '--terminate', '--all', '--json', '--config', node.configPath], { timeoutMs: 60_000 })
  t.equal(off.code, 0, `terminate answered: ${off.stderr}`)
}

t.test('two voters: leave on the leader leaves a one-voter group that leads and bursts', async (t) => {
  const root = tempDir(t)
  const workDir = join(root, 'work')
  reapBurst(t, workDir)
  const nodes = await startJoined(t, root, specs(root, workDir, ['a', 'b']), 'chain')
  const { leader } = await agreed(nodes, 2, 15_000)
  const survivor = nodes.find((n) => n !== leader)!

  const r = await meshd(['leave', '--config', leader.configPath], { timeoutMs: 60_000 })
  t.equal(r.code, 0, `leave: ${r.stdout}${r.stderr}`)
  t.match(r.stdout, /voter set: .*removed from the voter set \(committed at index \d+\)/, 'leave says the removal committed')
  const left = performance.now()
  t.same(await leader.exited(), { code: 0, signal: null }, 'the leader exited cleanly')

  await agreed([survivor], 1, Math.max(0, 5000 - (performance.now() - left)))
  t.pass(`the survivor leads a one-voter group ${Math.round(performance.now() - left)} ms after leave returned`)
  const s = await survivor.status()
  t.same(s.election?.voters, [survivor.peerId], 'the leaver is out of the voter set')

  const list = await meshd(['voters', '--config', survivor.configPath])
  t.equal(list.code, 0, list.stderr)
  // Either may have been elected first: the survivor is whichever did not lead.
  const name = survivor.spec.name
  t.match(list.stdout, new RegExp(`leader ${name} \\(`), `the table names the leader:\n${list.stdout}`)
  t.match(list.stdout, new RegExp(`^${name}\\s+${survivor.peerId}\\s+self\\s+leader$`, 'm'), 'the table shows the name beside the peer id')
  const json = JSON.parse((await meshd(['voters', '--json', '--config', survivor.configPath])).stdout) as { voters: string[], members: Array<{ id: string, name: string }>, leader_name: string }
  t.same(json.members.map((m) => [m.id, m.name]), [[survivor.peerId, name]], '--json carries names too')
  t.equal(json.leader_name, name)

  await burstWorks(t, survivor)
})

t.test('three voters: leave refused while it would strand; reset --force on the last survivor', async (t) => {
  const root = tempDir(t)
  const workDir = join(root, 'work')
  reapBurst(t, workDir)
  const nodes = await startJoined(t, root, specs(root, workDir, ['x', 'y', 'z']), 'chain')
  const { leader } = await agreed(nodes, 3, 15_000)
  const [dead, last] = nodes.filter((n) => n !== leader) as [DaemonProcess, DaemonProcess]

  dead.kill('SIGKILL')
  await dead.exited()
  // The leader stops counting the dead voter as live after a promise window (1.5 s).
  await waitFor(async () => (await leader.status()).members.find((m) => m.id === dead.peerId)?.state !== 'alive', { timeoutMs: 15_000, what: `${dead.spec.name} seen not alive` })
  const refused = await meshd(['leave', '--timeout', '3', '--config', leader.configPath], { timeoutMs: 60_000 })
  t.equal(refused.code, 1, 'leave exits 1 when its removal cannot commit')
  t.match(refused.stderr, /not leaving: .*removal from the voter set was not committed.*keeps running as a voter/s, `says so: ${refused.stderr.trim()}`)
  t.match(refused.stderr, new RegExp(`${dead.spec.name} \\(`), 'and names the voter it would need')
  t.ok(leader.running, 'the daemon did not leave')
  const still = await agreed([leader, last], 3, 10_000)
  t.equal(still.leader, leader, 'the group keeps its leader and its three voters')

  leader.kill('SIGKILL')
  await leader.exited()
  await waitFor(async () => (await last.status()).leader === null, { timeoutMs: 10_000, what: `${last.spec.name} to see no leader` })

  const noForce = await meshd(['voters', 'reset', '--config', last.configPath])
  t.equal(noForce.code, 2, 'reset without --force is refused as a usage error')
  t.match(noForce.stderr, /only voter of a new group.*lost its majority for good.*Add --force/s, 'and explains what it would do')
  t.equal(((await last.status()).election?.voters as string[] | undefined)?.length, 3, 'nothing changed without --force')

  const reset = await meshd(['voters', 'reset', '--force', '--config', last.configPath])
  t.equal(reset.code, 0, reset.stderr)
  t.match(reset.stderr, /WARNING: forced recovery/, 'a loud warning on stderr')
  t.ok(last.logs.some((l) => /FORCED RECOVERY/.test(String(l.msg))), 'and in the log')
  const { ms } = await agreed([last], 1, 5000)
  t.pass(`the survivor leads alone ${Math.round(ms)} ms after the reset`)
  await burstWorks(t, last)

  // A dropped voter that comes back yields to the new group and is added as a fresh voter.
  await dead.restart()
  const back = await agreed([last, dead], 2, 30_000)
  t.equal(back.leader, last, 'the survivor stays leader; the returning voter joins its group')
  t.equal((await dead.status()).election?.group, (await last.status()).election?.group, 'one group')
})
