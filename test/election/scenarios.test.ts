/**
 * Focused scenarios on the simulated cluster. The checker runs after every
 * event in all of them (two acting leaders, two leaders of a term, divergent
 * applies... throw at once), so each test states the outcome it expects on
 * top of "nothing unsafe happened on the way".
 */
import t, { type Test } from 'tap'
import { Cluster } from '../../mesh/election/sim/cluster.ts'
import { DEFAULT_TIMING, leaseMs } from '../../mesh/election/raft/timing.ts'

const LAN = { minDelayMs: 1, maxDelayMs: 10, loss: 0, duplicate: 0, spike: 0, spikeMaxMs: 0 }
const LEASE = leaseMs(DEFAULT_TIMING)
const RHO = DEFAULT_TIMING.maxDriftRate

function cluster (seed: number, voters: number, drift: 'none' | 'random' | 'extreme' = 'random'): Cluster {
  return new Cluster({ seed, voters, net: LAN, drift, asyncFlush: 0.3, timerLateMs: 5 })
}

function electLeader (t: Test, c: Cluster): string {
  const took = c.runUntilTrue(() => c.actingLeaders().length === 1, 10_000)
  t.ok(took !== null, 'a leader acts')
  return c.actingLeaders()[0]!
}

function leaseLeft (c: Cluster, id: string): number {
  const s = c.raftOf(id)!.status(c.localOf(id))
  return s.leaseUntil === null ? 0 : s.leaseUntil - c.localOf(id)
}

t.test('leader killed: a new leader acts within 3 s and committed entries survive', async (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const c = cluster(seed, 5)
    const old = electLeader(t, c)
    const p = c.propose(old, 'before')!
    c.runFor(1000)
    t.ok('index' in p && c.appliedIndex(old) >= p.index)
    c.crash(old)
    const took = c.runUntilTrue(() => c.actingLeaders().length === 1, 3000)
    t.ok(took !== null, `seed ${seed}: new leader after ${took?.toFixed(0)} ms`)
    const next = c.actingLeaders()[0]!
    t.ok(c.raftOf(next)!.logSlice().some(e => e.data === 'before'), 'the committed entry is in the new leader\'s log')
  }
})

t.test('a minority partition elects no one, never acts, and does not inflate terms', async (t) => {
  const c = cluster(11, 5)
  const leader = electLeader(t, c)
  const others = c.ids().filter(id => id !== leader)
  const minority = [others[0]!, others[1]!]
  const termBefore = c.raftOf(leader)!.currentTerm
  c.net.partition([minority, c.ids().filter(id => !minority.includes(id))])
  let minorityActed = false
  for (let i = 0; i < 300; i++) {
    c.runFor(100)
    if (c.actingLeaders().some(id => minority.includes(id))) minorityActed = true
  }
  t.notOk(minorityActed, 'no node of the minority ever acted')
  for (const id of minority) {
    t.equal(c.raftOf(id)!.currentRole === 'leader', false)
    t.equal(c.raftOf(id)!.currentTerm, termBefore, `${id} kept term ${termBefore} (pre-votes only)`)
    t.match(c.raftOf(id)!.status(c.localOf(id)).reason, { code: 'no_quorum', text: /2 of 5 voters reachable, 3 needed/ })
  }
  t.same(c.actingLeaders(), [leader], 'the majority kept its leader, undisturbed')
  c.net.heal()
  c.runFor(1000)
  t.same(c.actingLeaders(), [leader], 'and the minority rejoined without an election')
  t.equal(c.raftOf(leader)!.currentTerm, termBefore)
})

t.test('heal: a leader left in the minority adopts the newer term and loses what only it had', async (t) => {
  const c = cluster(21, 5)
  const old = electLeader(t, c)
  const rest = c.ids().filter(id => id !== old)
  c.net.partition([[old, rest[0]!], rest.slice(1)])
  const lost = c.propose(old, 'minority-only')
  t.ok(lost !== null && 'index' in lost, 'the old leader still accepts a proposal')
  const took = c.runUntilTrue(() => c.actingLeaders().some(id => id !== old), 5000)
  t.ok(took !== null, 'the majority side elects a leader')
  t.notOk(c.actingLeaders().includes(old), 'the old leader no longer acts')
  const next = c.actingLeaders()[0]!
  c.propose(next, 'majority')
  c.runFor(500)
  c.net.heal()
  c.runFor(2000)
  const nextTerm = c.raftOf(next)!.currentTerm
  t.equal(c.raftOf(old)!.currentRole, 'follower')
  t.equal(c.raftOf(old)!.currentTerm, nextTerm)
  const log = c.raftOf(old)!.logSlice()
  t.notOk(log.some(e => e.data === 'minority-only'), 'the uncommitted minority entry was truncated')
  t.ok(log.some(e => e.data === 'majority'))
  t.notOk(c.persistedLog(old).some(e => e.data === 'minority-only'), 'on disk too')
})

t.test('a hung leader resumes and does not act on its stale lease', async (t) => {
  for (const seed of [31, 32, 33, 34]) {
    const c = cluster(seed, 3, 'extreme')
    const old = electLeader(t, c)
    c.pause(old, 6000)
    const took = c.runUntilTrue(() => c.actingLeaders().some(id => id !== old), 5000)
    t.ok(took !== null, `seed ${seed}: the others elect a leader while it hangs (${took?.toFixed(0)} ms)`)
    c.runUntilTrue(() => c.isUp(old), 7000)
    t.notOk(c.raftOf(old)!.isActingLeader(c.localOf(old)), 'on resume it does not act')
    c.runFor(1000)
    t.equal(c.raftOf(old)!.currentRole, 'follower', 'and it follows the new leader')
  }
})

t.test('a short hang inside the lease: the leader keeps acting and nobody is elected', async (t) => {
  const c = cluster(41, 3, 'none')
  const leader = electLeader(t, c)
  const term = c.raftOf(leader)!.currentTerm
  c.runUntilTrue(() => leaseLeft(c, leader) > LEASE - 20, 1000)
  c.pause(leader, 700)
  c.runFor(700)
  t.ok(c.raftOf(leader)!.isActingLeader(c.localOf(leader)), 'still inside its lease when it wakes: it may act')
  c.runFor(3000)
  t.same(c.actingLeaders(), [leader])
  t.equal(c.raftOf(leader)!.currentTerm, term)
})

t.test('start-up promise: a follower that crashes and restarts at once cannot elect a rival inside the lease', async (t) => {
  // The leader L has lost its link to F1, which keeps pre-voting; F2 still
  // hears L, so its promise refuses F1. F2 then crashes right after
  // acknowledging L and restarts immediately, and L's next heartbeats do not
  // reach it. L's lease still counts F2's last acknowledgement; only F2's
  // start-up promise stops it from electing F1 before that lease ends.
  let elected = 0
  for (let seed = 1; seed <= 30; seed++) {
    const c = cluster(100 + seed, 3, 'none')
    const L = electLeader(t, c)
    const [f1, f2] = c.ids().filter(id => id !== L) as [string, string]
    c.net.cutBoth(L, f1)
    c.runFor(2500 + (seed % 10) * 100)
    c.runUntilTrue(() => leaseLeft(c, L) > LEASE - 15, 1000)
    c.net.cut(L, f2)
    c.crash(f2)
    c.restart(f2)
    if (c.runUntilTrue(() => c.actingLeaders().some(id => id !== L), 6000) !== null) elected++
  }
  t.equal(elected, 30, 'F1 and F2 always end up electing a leader, after L\'s lease')
})

t.test('drift at the limits: a slow-clocked leader hangs right after renewing its lease', async (t) => {
  // The leader's clock runs 5% slow (its lease lasts longest in real time),
  // the followers' 5% fast (their promises end soonest): the lease formula's
  // (1−ρ)/(1+ρ) is what keeps the two apart.
  let margin = Infinity
  for (let seed = 1; seed <= 40; seed++) {
    const c = cluster(200 + seed, 5, 'none')
    const L = electLeader(t, c)
    for (const id of c.ids()) c.setRate(id, id === L ? 1 - RHO : 1 + RHO)
    c.runFor(1000)
    c.runUntilTrue(() => leaseLeft(c, L) > LEASE - 25, 1000)
    const leaseEndsIn = leaseLeft(c, L) / (1 - RHO) // real ms, on the slow clock
    c.pause(L, 8000)
    const took = c.runUntilTrue(() => c.actingLeaders().some(id => id !== L), 6000)
    if (took === null) { t.fail(`seed ${seed}: no new leader`); return }
    margin = Math.min(margin, took - leaseEndsIn)
  }
  t.ok(margin > 0, `every takeover came after the hung leader's lease ended (closest: ${margin.toFixed(0)} ms after)`)
})

t.test('removing a follower, then the leader itself', async (t) => {
  const c = cluster(51, 5)
  const leader = electLeader(t, c)
  const follower = c.ids().find(id => id !== leader)!
  t.ok('index' in c.changeConfig({ remove: follower }))
  c.runFor(1000)
  t.same(c.raftOf(leader)!.status(c.localOf(leader)).voters, c.ids().filter(id => id !== follower))
  c.retire(follower)
  c.runFor(1000)
  t.same(c.actingLeaders(), [leader], 'the leader carries on with four voters')

  const r = c.changeConfig({ remove: leader })
  t.ok('index' in r, 'the leader proposes its own removal')
  t.notOk(c.raftOf(leader)!.isActingLeader(c.localOf(leader)), 'and stops acting at once')
  const took = c.runUntilTrue(() => c.actingLeaders().length === 1 && c.actingLeaders()[0] !== leader, 5000)
  t.ok(took !== null, `the remaining three elect a leader (${took?.toFixed(0)} ms)`)
  t.equal(c.raftOf(leader)!.currentRole, 'follower')
  const next = c.actingLeaders()[0]!
  t.equal(c.raftOf(next)!.status(c.localOf(next)).voters.length, 3)
  c.runFor(10_000)
  t.match(c.raftOf(leader)!.status(c.localOf(leader)).reason, { code: 'not_a_voter' })
  t.same(c.actingLeaders(), [next], 'the removed node never disturbs them')
})

t.test('adding a voter: it catches up and then counts in the quorum', async (t) => {
  const c = cluster(61, 3)
  const leader = electLeader(t, c)
  for (let i = 0; i < 100; i++) c.propose(leader, { i })
  c.runFor(500)
  const added = c.addNode()
  t.ok(added !== null && 'index' in added.result, 'the leader appends the new config')
  c.runFor(2000)
  const id = added!.id
  t.same(c.raftOf(id)!.status(c.localOf(id)).voters.length, 4)
  t.equal(c.appliedIndex(id), c.appliedIndex(leader), 'the new node has the whole ledger')
  // With four voters a majority is three: kill two of the old ones and the
  // new node's vote is needed; the cluster must still make progress after
  // they come back one at a time.
  const old = c.ids().filter(x => x !== leader && x !== id)
  c.crash(old[0]!)
  c.runFor(500)
  t.same(c.actingLeaders(), [leader], 'three of four voters still act')
  c.crash(leader)
  const took = c.runUntilTrue(() => c.actingLeaders().length === 1, 5000)
  t.equal(took, null, 'two of four cannot elect anyone')
  c.restart(old[0]!)
  const took2 = c.runUntilTrue(() => c.actingLeaders().length === 1, 5000)
  t.ok(took2 !== null, 'three of four elect a leader again')
})
