/**
 * Who bootstraps a consensus group and which group yields when two meet:
 * tables over what heartbeats announce.
 */
import t from 'tap'
import { admit, bootstrapVerdict, ourSize, outranks, strandedVerdict, voterToAdd, yieldVerdict, type GroupView, type SelfView } from '../../mesh/election/group.ts'

const self = (over: Partial<SelfView> = {}): SelfView => ({ id: 'b', group: null, voters: 0, voter: true, startedAt: 0, ...over })
const view = (over: Partial<GroupView>): GroupView => ({ id: 'x', group: null, leader: null, voters: 0, voter: true, alive: true, ...over })
const SETTLE = 2000
const MAX = 15_000

t.test('bootstrap', async (t) => {
  const table: Array<[string, SelfView, GroupView[], number, 'wait' | 'bootstrap']> = [
    ['not a voter never bootstraps', self({ voter: false }), [], 60_000, 'wait'],
    ['in a group already', self({ group: 'g' }), [], 60_000, 'wait'],
    ['alone, still settling', self(), [], 1000, 'wait'],
    ['alone after settling: the first voter of the cluster', self(), [], SETTLE, 'bootstrap'],
    ['a group with a leader is in sight: wait to be added', self(), [view({ id: 'a', group: 'g', leader: 'a', voters: 1 })], 60_000, 'wait'],
    ['a group still electing its first leader: join it, never found another', self(), [view({ id: 'a', group: 'g', leader: null })], MAX, 'wait'],
    ['lowest id among fresh voters bootstraps', self({ id: 'a' }), [view({ id: 'b' }), view({ id: 'c' })], SETTLE, 'bootstrap'],
    ['a higher id waits for the lowest', self({ id: 'b' }), [view({ id: 'a' }), view({ id: 'c' })], SETTLE, 'wait'],
    ['non-voters and the dead do not count', self({ id: 'b' }), [view({ id: 'a', voter: false }), view({ id: 'a2', alive: false })], SETTLE, 'bootstrap'],
    ['waited too long: bootstrap anyway', self({ id: 'b' }), [view({ id: 'a' })], MAX, 'bootstrap'],
    ['told of peers, none reached yet: wait', self({ knowsPeers: true }), [], SETTLE, 'wait'],
    ['told of peers, reached only fresh ones: lowest id rule', self({ id: 'a', knowsPeers: true }), [view({ id: 'b' })], SETTLE, 'bootstrap'],
    ['told of peers that never answer: bootstrap in the end', self({ knowsPeers: true }), [], MAX, 'bootstrap']
  ]
  for (const [name, s, others, now, want] of table) t.equal(bootstrapVerdict(s, others, now, SETTLE, MAX).action, want, name)
})

t.test('merge: the smaller group yields; all its members agree', async (t) => {
  t.ok(outranks({ group: 'z', voters: 3 }, { group: 'a', voters: 2 }), 'more voters wins')
  t.ok(outranks({ group: 'a', voters: 2 }, { group: 'b', voters: 2 }), 'a tie goes to the smaller group id (the older group)')
  t.notOk(outranks({ group: 'a', voters: 2 }, { group: 'a', voters: 2 }), 'a group does not outrank itself')
  const big = view({ id: 'L', group: 'g2', leader: 'L', voters: 3 })
  t.match(yieldVerdict({ group: 'g1', voters: 1 }, [big]), { yield: true, to: 'g2' })
  t.same(yieldVerdict({ group: 'g2', voters: 3 }, [view({ id: 'M', group: 'g1', leader: 'M', voters: 1 })]), { yield: false }, 'the bigger group stays')
  t.same(yieldVerdict({ group: 'g1', voters: 1 }, [view({ id: 'F', group: 'g2', leader: 'L', voters: 3 })]), { yield: false }, 'only what a group\'s leader announces counts')
  t.same(yieldVerdict({ group: 'g1', voters: 1 }, [view({ id: 'L', group: 'g2', leader: null, voters: 3 })]), { yield: false }, 'a group without a leader (maybe a minority) is not yielded to')
  t.same(yieldVerdict({ group: 'g1', voters: 1 }, [view({ id: 'L', group: 'g2', leader: 'L', voters: 3, alive: false })]), { yield: false }, 'nor a dead one')
  t.same(yieldVerdict(null, [big]), { yield: false }, 'a fresh node has nothing to yield')
  // Both sides of a meeting, from either side's view: exactly one yields.
  const A = { group: 'ga', voters: 2 }
  const B = { group: 'gb', voters: 2 }
  const aYields = yieldVerdict(A, [view({ id: 'lb', group: 'gb', leader: 'lb', voters: 2 })]).yield
  const bYields = yieldVerdict(B, [view({ id: 'la', group: 'ga', leader: 'la', voters: 2 })]).yield
  t.ok(aYields !== bYields, 'exactly one of two equal groups yields')
})

t.test('admit: same group steps, others drop, a fresh voter is adopted by the first append', async (t) => {
  t.equal(admit('g', true, 'g', 'prevote'), 'step')
  t.equal(admit('g', true, 'h', 'append'), 'drop')
  t.equal(admit('g', true, null, 'append'), 'drop')
  t.equal(admit(null, true, 'g', 'append'), 'adopt')
  t.equal(admit(null, true, 'g', 'prevote'), 'drop', 'only a leader replicating to it adopts a fresh voter')
  t.equal(admit(null, false, 'g', 'append'), 'drop', 'a non-voter is adopted by nobody')
})

t.test('voterToAdd: alive fresh voters or ours, never one of another group', async (t) => {
  t.equal(voterToAdd('g', ['a'], [view({ id: 'b', group: 'h' }), view({ id: 'c' })]), 'c')
  t.equal(voterToAdd('g', ['a'], [view({ id: 'b', group: 'g' })]), 'b', 'already adopted (a learner): still to add')
  t.equal(voterToAdd('g', ['a', 'b'], [view({ id: 'b' }), view({ id: 'c', alive: false }), view({ id: 'd', voter: false })]), null)
})

t.test('ourSize: the fresher of our log and our leader\'s announcement', async (t) => {
  const leader = view({ id: 'L', group: 'g', leader: 'L', voters: 2 })
  t.equal(ourSize({ id: 'f', group: 'g', leader: 'L', voters: 1 }, [leader]), 2, 'a member still being caught up holds an older config')
  t.equal(ourSize({ id: 'f', group: 'g', leader: 'L', voters: 3 }, [leader]), 3, 'a heartbeat older than our log')
  t.equal(ourSize({ id: 'L', group: 'g', leader: 'L', voters: 2 }, [view({ id: 'X', group: 'g', leader: 'L', voters: 5 })]), 2, 'the leader counts its own log')
  t.equal(ourSize({ id: 'f', group: 'g', leader: null, voters: 2 }, [leader]), 2)
})

t.test('strandedVerdict: a group whose majority went to other groups leaves', async (t) => {
  const self = { id: 'c', group: 'gc', voters: ['c', 'b'] }
  t.match(strandedVerdict(self, [view({ id: 'b', group: 'ga', leader: 'a' })]), { stranded: true }, 'the voter it added went to another group (issue 11)')
  t.same(strandedVerdict(self, [view({ id: 'b', group: null })]), { stranded: false }, 'a member announcing no group may just be older news')
  t.same(strandedVerdict(self, [view({ id: 'b', group: 'gc' })]), { stranded: false })
  t.same(strandedVerdict(self, [view({ id: 'b', group: 'ga', alive: false })]), { stranded: false }, 'the dead do not count')
  const five = { id: 'a', group: 'g', voters: ['a', 'b', 'c', 'd', 'e'] }
  t.same(strandedVerdict(five, [view({ id: 'b', group: 'h' }), view({ id: 'c', group: 'h' })]), { stranded: false }, 'three of five still here')
  t.match(strandedVerdict(five, [view({ id: 'b', group: 'h' }), view({ id: 'c', group: 'h' }), view({ id: 'd', group: 'k' })]), { stranded: true })
})
