/**
 * The leader end to end: three voters on loopback with sim replicas and a
 * local provider (0.30/h each, cost_budget 1.0). One leader, failover after a
 * kill and after a hang (never two leaders at once, polled every 100 ms), a
 * burst cut by the budget, burst members that take traffic, and a leader
 * killed right after a burst decision.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import OpenAI from 'openai'
import { tempDir, type Teardown } from '../helpers/tmp.ts'
import { startJoined, writeSwarmKey, type DaemonProcess } from '../helpers/daemon.ts'
import { meshd } from '../helpers/cli.ts'
import { waitFor, WaitTimeout } from '../../daemon/localmesh/poll.ts'
import { agreedLeader, statuses } from '../../daemon/localmesh/cluster.ts'
import { reapBurst, runningBurst } from '../helpers/burst.ts'
import type { StatusDocument } from '../../daemon/status.ts'

const replica = { models: ['llama3'], slots: 4, command: 'sim', readiness_probe: { initial_delay_seconds: 60, period_seconds: 1 }, sim: { ttft_ms: 20, tokens_per_second: 100, max_tokens: 8 } }

/** Three voters in a chain, each joined only to the one before it. */
async function voters (t: Teardown, root: string, workDir: string): Promise<DaemonProcess[]> {
  const swarmKeyFile = writeSwarmKey(root)
  const config = {
    replica,
    burst: { cost_budget: 1.0, check_interval: '2s' },
    providers: [{ name: 'workstation', kind: 'local', cost_per_hour: 0.3, max_instances: 6, work_dir: workDir, replica: { models: ['llama3'], slots: 4, command: 'sim', sim: replica.sim } }]
  }
  return startJoined(t, root, ['v1', 'v2', 'v3'].map((name) => ({ name, swarmKeyFile, config })), 'chain')
}

/** Every live node's own view: who it says leads, and whether it says it leads itself. */
async function views (nodes: DaemonProcess[]): Promise<StatusDocument[]> {
  return statuses(nodes.filter((n) => n.running))
}

/** The leader all `n` live nodes name, with all three voters, or null. */
function agreed (ss: StatusDocument[], n: number): string | null {
  return ss.length === n ? agreedLeader(ss, 3)?.leader ?? null : null
}

/** Polls every 100 ms until `until` holds, failing if two nodes ever both claim to lead. */
async function watchLeaders (t: Test, nodes: DaemonProcess[], what: string, until: (ss: StatusDocument[]) => boolean, timeoutMs: number): Promise<number> {
  let worst = 0
  let last: StatusDocument[] = []
  try {
    const { ms } = await waitFor(async () => {
      const ss = last = await views(nodes)
      const claimants = ss.filter((s) => s.leader === s.self)
      worst = Math.max(worst, claimants.length)
      if (claimants.length > 1) t.fail(`two members claim to lead at once: ${claimants.map((s) => s.name).join(', ')}`)
      return until(ss)
    }, { timeoutMs, intervalMs: 100, what })
    t.ok(worst <= 1, `${what}: never two members claiming to lead`)
    return ms
  } catch (err) {
    if (!(err instanceof WaitTimeout)) throw err
    throw new Error(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(last.map((s) => [s.name, s.leader, s.term, s.election?.role]))}`, { cause: err })
  }
}

/** A new leader, other than `old`, that every one of `ss` names. */
const newLeader = (old: string) => (ss: StatusDocument[]): boolean => {
  const l = ss[0]?.leader
  return l !== null && l !== undefined && l !== old && ss.every((s) => s.leader === l)
}

t.test('one leader; failover after kill and hang; bursts within the budget', async (t) => {
  const root = tempDir(t)
  const workDir = join(root, 'work')
  reapBurst(t, workDir)
  const nodes = await voters(t, root, workDir)

  let leaderId = ''
  await t.test('all agree on one leader within 5 s', async (t) => { leaderId = await agreeOnOne(t, nodes) })
  await t.test('burst --count 5 from a follower: cut to 3 by the budget; 3 burst members alive, ready, serving', async (t) => { await burstCutByBudget(t, nodes, leaderId, workDir) })
  await t.test('kill -9 of the leader: a new one agreed by the survivors within 3 s', async (t) => { leaderId = await failoverAfterKill(t, nodes, leaderId, workDir) })
  await t.test('SIGSTOP of the leader: a new one within 6 s; it resumes as a follower', async (t) => { leaderId = await failoverAfterHang(t, nodes, leaderId) })
  await t.test('terminate --all drains and releases every burst replica', async (t) => { await terminateAll(t, nodes, workDir) })
  await t.test('meshd leave of a voter shrinks the voter set; the two left keep one leader', async (t) => { await leaveShrinks(t, nodes, leaderId) })
})

async function agreeOnOne (t: Test, nodes: DaemonProcess[]): Promise<string> {
  const ms = await watchLeaders(t, nodes, 'agreement', (ss) => agreed(ss, 3) !== null, 5000)
  const leaderId = agreed(await views(nodes), 3)!
  t.pass(`agreed on ${nodes.find((n) => n.peerId === leaderId)!.spec.name} after ${Math.round(ms)} ms`)
  return leaderId
}

async function burstCutByBudget (t: Test, nodes: DaemonProcess[], leaderId: string, workDir: string): Promise<void> {
  const follower = nodes.find((n) => n.peerId !== leaderId)!
  const r = await meshd(['burst', '--count', '5', '--json', '--config', follower.configPath], { timeoutMs: 90_000 })
  t.equal(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout) as { requested: number, granted: number, decision: string, reason: string, provider: string, instances: string[] }
  t.match(doc, { requested: 5, granted: 3, decision: 'cut', reason: 'cost_budget 1.00/h allows 3 at 0.30/h', provider: 'workstation' })
  t.equal(doc.instances.length, 3)
  const { value: burst } = await waitFor(async () => {
    const s = await follower.status()
    const b = s.members.filter((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true)
    return b.length === 3 ? b : null
  }, { timeoutMs: 30_000, what: 'three burst members alive and ready' })
  t.same(burst.map((m) => m.cost_per_hour), [0.3, 0.3, 0.3])
  t.equal(runningBurst(workDir).length, 3, 'exactly three burst processes')
  const s = await follower.status()
  t.ok(s.budget !== undefined && s.budget.spend_per_hour <= 1.0 + 1e-9, `spend ${s.budget?.spend_per_hour}/h within the 1.00/h budget`)
  t.equal(s.budget?.cost_budget, 1)
  await burstTakesTraffic(t, follower, new Set(burst.map((m) => m.id)))
  const again = await meshd(['burst', '--count', '1', '--json', '--config', follower.configPath], { timeoutMs: 90_000 })
  t.equal(again.code, 1, 'a burst beyond the budget is refused (exit 1)')
  t.match(JSON.parse(again.stdout), { decision: 'refused', granted: 0, reason: /cost_budget/ })
}

/** Traffic reaches them: an entry node spreads requests over all six replicas. */
async function burstTakesTraffic (t: Test, entry: DaemonProcess, burstIds: Set<string>): Promise<void> {
  const client = new OpenAI({ baseURL: `${entry.url}/v1`, apiKey: 'x', maxRetries: 0 })
  const served = new Set<string>()
  await Promise.all(Array.from({ length: 24 }, async () => {
    for (let i = 0; i < 4; i++) {
      const { response } = await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
      served.add(response.headers.get('x-meshd-served-by') ?? '')
    }
  }))
  t.ok([...served].some((id) => burstIds.has(id)), `burst members take traffic (${[...served].filter((id) => burstIds.has(id)).length} of 3 served)`)
}

async function failoverAfterKill (t: Test, nodes: DaemonProcess[], leaderId: string, workDir: string): Promise<string> {
  const victim = nodes.find((n) => n.peerId === leaderId)!
  victim.kill('SIGKILL')
  const survivors = nodes.filter((n) => n !== victim)
  const ms = await watchLeaders(t, survivors, 'failover after kill', newLeader(leaderId), 3000)
  t.pass(`new leader after ${Math.round(ms)} ms`)
  await victim.exited()
  await victim.restart()
  await watchLeaders(t, nodes, 'the old leader rejoins as a follower', (ss) => ss.length === 3 && ss.every((s) => s.leader === ss[0]!.leader && s.leader !== null), 10_000)
  t.equal(runningBurst(workDir).length, 3, 'the burst nodes survived the leader that launched them')
  return (await nodes[0]!.status()).leader!
}

async function failoverAfterHang (t: Test, nodes: DaemonProcess[], leaderId: string): Promise<string> {
  const victim = nodes.find((n) => n.peerId === leaderId)!
  victim.kill('SIGSTOP')
  const others = nodes.filter((n) => n !== victim)
  try {
    const ms = await watchLeaders(t, others, 'failover after hang', newLeader(leaderId), 6000)
    t.pass(`new leader after ${Math.round(ms)} ms`)
  } finally {
    victim.kill('SIGCONT')
  }
  await watchLeaders(t, nodes, 'the hung leader resumes as a follower', (ss) => ss.length === 3 && ss.every((s) => s.leader === ss[0]!.leader && s.leader !== null && s.leader !== victim.peerId), 10_000)
  return (await nodes[0]!.status()).leader!
}

async function terminateAll (t: Test, nodes: DaemonProcess[], workDir: string): Promise<void> {
  const r = await meshd(['burst', '--terminate', '--all', '--json', '--config', nodes[0]!.configPath], { timeoutMs: 90_000 })
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(r.stdout), { decision: 'granted', granted: 3 })
  await waitFor(() => runningBurst(workDir).length === 0, { timeoutMs: 60_000, what: 'every burst process to exit' })
  const s = await nodes[0]!.status()
  t.equal(s.budget?.spend_per_hour, 0, 'nothing billed any more')
}

async function leaveShrinks (t: Test, nodes: DaemonProcess[], leaderId: string): Promise<void> {
  const goer = nodes.find((n) => n.peerId !== leaderId)!
  const stay = nodes.filter((n) => n !== goer)
  const r = await meshd(['leave', '--config', goer.configPath])
  t.equal(r.code, 0, r.stderr)
  t.same(await goer.exited(), { code: 0, signal: null })
  const { value: voters } = await waitFor(async () => {
    const v = (await stay[0]!.status()).election?.voters as string[] | undefined
    return v !== undefined && v.length === 2 ? v : null
  }, { timeoutMs: 10_000, what: 'the voter set to shrink to two' })
  t.notOk(voters.includes(goer.peerId), 'the departed voter is out')
  const list = await meshd(['voters', '--json', '--config', stay[0]!.configPath])
  t.equal((JSON.parse(list.stdout) as { voters: string[] }).voters.length, 2, 'meshd voters shows it too')
  // Quorum of two voters is two: both must still agree on a leader after the shrink.
  await watchLeaders(t, stay, 'the two left agree on a leader', (ss) => ss.length === 2 && ss[0]!.leader !== null && ss.every((s) => s.leader === ss[0]!.leader), 10_000)
}

t.test('the leader killed right after a burst decision: no duplicate, none lost', async (t) => {
  const root = tempDir(t)
  const workDir = join(root, 'work')
  reapBurst(t, workDir)
  const nodes = await voters(t, root, workDir)
  await watchLeaders(t, nodes, 'agreement', (ss) => agreed(ss, 3) !== null, 10_000)
  const leaderId = agreed(await views(nodes), 3)!
  const leader = nodes.find((n) => n.peerId === leaderId)!
  const follower = nodes.find((n) => n !== leader)!
  // Kill the leader the moment its decision is committed (the answer comes back after the commit).
  const r = await meshd(['burst', '--count', '2', '--json', '--config', follower.configPath], { timeoutMs: 90_000 })
  leader.kill('SIGKILL')
  t.equal(r.code, 0, r.stderr)
  const decided = (JSON.parse(r.stdout) as { granted: number, instances: string[] })
  t.equal(decided.granted, 2)
  const survivors = nodes.filter((n) => n !== leader)
  await waitFor(async () => newLeader(leaderId)(await views(survivors)), { timeoutMs: 10_000, what: 'a new leader' })
  // The new leader re-issues what the ledger shows unconfirmed (idempotent by key) and reconciles.
  const { value: keys } = await waitFor(async () => {
    const running = runningBurst(workDir)
    const s = await survivors[0]!.status()
    const ready = s.members.filter((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true).length
    return running.length === 2 && ready === 2 ? running : null
  }, { timeoutMs: 60_000, what: 'the decision carried out by the new leader' })
  t.same([...keys].sort(), [...decided.instances].sort(), 'exactly the decided instances run: no duplicate, none lost')
})
