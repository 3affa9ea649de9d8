/**
 * Leaving the voter set and recovering from a lost majority, in the Raft
 * core: the removal pre-check (removal.ts), taking back a removal whose new
 * majority died (revertConfig, and check-quorum doing it on its own), and
 * forced recovery (recovery.ts): a survivor made the only voter elects itself
 * and commits what it holds.
 */
import t from 'tap'
import { Raft } from '../../mesh/election/raft/raft.ts'
import { DEFAULT_TIMING } from '../../mesh/election/raft/timing.ts'
import { removalQuorum } from '../../mesh/election/raft/removal.ts'
import { forcedRecovery, RecoveryError } from '../../mesh/election/raft/recovery.ts'
import type { Entry } from '../../mesh/election/raft/types.ts'
import { Bench, three } from './bench.ts'

t.test('removalQuorum: the voters left must have a live majority; the leader counts itself when it stays', async (t) => {
  const live = (...ids: string[]) => (id: string) => ids.includes(id)
  t.same(removalQuorum(['a', 'b'], 'a', 'a', live('b')), { ok: true }, 'two voters, the leader leaves, the other answers')
  t.same(removalQuorum(['a', 'b'], 'a', 'a', live()), { ok: false, missing: ['b'], need: 1, of: 1 }, 'two voters, the other is silent')
  t.same(removalQuorum(['a', 'b', 'c'], 'a', 'a', live('b')), { ok: false, missing: ['c'], need: 2, of: 2 }, 'three voters, the leader leaves, one of the two others is dead')
  t.same(removalQuorum(['a', 'b', 'c'], 'b', 'a', live('b')), { ok: false, missing: ['c'], need: 2, of: 2 }, 'a follower leaves: {a, c} needs c, however live b is')
  t.same(removalQuorum(['a', 'b', 'c'], 'b', 'a', live('c')), { ok: true })
  t.same(removalQuorum(['a', 'b', 'c', 'd'], 'd', 'a', live('b')), { ok: true }, 'removing a dead fourth: {a, b, c} needs two, a and b answer')
  t.same(removalQuorum(['a'], 'a', 'a', live()), { ok: false, missing: [], need: 1, of: 0 }, 'removing the only voter never has a majority')
})

t.test('removalCheck reads who answered recently, on the leader only', async (t) => {
  const b = three()
  b.advance(1700)
  const a = b.get('a')
  t.same(b.leaders(), ['a'])
  t.same(a.removalCheck('a', b.now), { ok: true }, 'all answer: the leader may remove itself')
  t.same(b.get('b').removalCheck('b', b.now), { error: 'not_leader', leader: 'a' })
  b.isolate('c')
  b.advance(1100) // more than two heartbeats without an answer from c
  t.same(a.removalCheck('a', b.now), { ok: false, missing: ['c'], need: 2, of: 2 }, 'removing itself would need c')
  t.same(a.removalCheck('b', b.now), { ok: false, missing: ['c'], need: 2, of: 2 }, 'so would removing b')
  t.same(a.removalCheck('c', b.now), { ok: true }, 'removing the silent one is fine')
})

t.test('a leader that removed itself just as a voter it needs died takes the removal back and keeps leading', async (t) => {
  const b = three()
  b.advance(1700)
  const a = b.get('a')
  t.same(b.leaders(), ['a'])
  b.isolate('c') // c dies the instant after the check would have passed
  const r = a.proposeConfig({ remove: 'a' }, b.now)
  t.match(r, { index: 3 })
  t.same(a.status(b.now).voters, ['b', 'c'], 'the removal is in force on the leader at once')
  b.advance(3000)
  t.same(b.leaders(), ['a'], 'still the leader: check-quorum took the change back rather than step down')
  const s = a.status(b.now)
  t.same(s.voters, ['a', 'b', 'c'], 'the config before the change is back')
  t.equal(s.commitIndex, s.lastIndex, 'and committed (by a and b)')
  t.same(a.logSlice(3).map((e) => [e.kind, e.data]), [['config', { voters: ['b', 'c'] }], ['config', { voters: ['a', 'b', 'c'] }]])
  t.ok(a.isActingLeader(b.now), 'acting again')
  t.same(b.get('b').status(b.now).voters, ['a', 'b', 'c'], 'b follows the same config')
})

t.test('a removed follower whose removal stalls: the leader takes it back too', async (t) => {
  const b = three()
  b.advance(1700)
  const a = b.get('a')
  b.isolate('c')
  t.match(a.proposeConfig({ remove: 'b' }, b.now), { index: 3 })
  t.same(a.status(b.now).voters, ['a', 'c'])
  b.advance(3000)
  t.same(b.leaders(), ['a'])
  t.same(a.status(b.now).voters, ['a', 'b', 'c'])
  t.ok(a.isActingLeader(b.now))
})

t.test('without a live majority in the old config either, the leader steps down as before', async (t) => {
  const b = three()
  b.advance(1700)
  const a = b.get('a')
  b.isolate('a')
  t.match(a.proposeConfig({ remove: 'b' }, b.now), { index: 3 })
  b.advance(3000)
  t.not(a.currentRole, 'leader', 'cut off from everyone: no config helps, it steps down')
})

t.test('revertConfig: leader only, and only an uncommitted change', async (t) => {
  const b = three()
  b.advance(1700)
  const a = b.get('a')
  t.same(a.revertConfig(b.now), { error: 'no_change' }, 'nothing uncommitted to take back')
  t.same(b.get('b').revertConfig(b.now), { error: 'not_leader', leader: 'a' })
  b.isolate('a')
  t.match(a.proposeConfig({ add: 'd' }, b.now), { index: 3 })
  t.match(a.revertConfig(b.now), { index: 4 })
  t.same(a.status(b.now).voters, ['a', 'b', 'c'])
  t.same(a.revertConfig(b.now), { error: 'no_change' }, 'the take-back is itself not taken back')
})

function log (...terms: number[]): Entry[] {
  return terms.map((term, i) => i === 0
    ? { index: 1, term, kind: 'config', data: { voters: ['a', 'b', 'c'] } }
    : { index: i + 1, term, kind: 'command', data: { n: i + 1 } })
}

t.test('forcedRecovery: a new config after the whole log, in a term nobody used here', async (t) => {
  const plan = forcedRecovery('c', { term: 7, votedFor: 'a' }, log(1, 2, 5))
  t.same(plan, {
    hardState: { term: 8, votedFor: 'c' },
    entry: { index: 4, term: 8, kind: 'config', data: { voters: ['c'] } }
  })
  t.throws(() => forcedRecovery('c', { term: 0, votedFor: null }, []), RecoveryError, 'a node that was never in a group has nothing to recover')
  t.throws(() => forcedRecovery('', { term: 1, votedFor: null }, log(1)), RecoveryError)
  t.throws(() => forcedRecovery('c', { term: 1, votedFor: null }, log(1, 3)), RecoveryError, 'a log term above the hard state is refused')
})

t.test('a survivor restarted from a recovery plan elects itself and commits everything it held', async (t) => {
  // c held entries 2 and 3 of term 2 that the old group never committed (its majority died).
  const old = log(1, 2, 2)
  const plan = forcedRecovery('c', { term: 2, votedFor: 'a' }, old)
  const bench = new Bench()
  bench.disk.set('c', { hs: plan.hardState, log: [...old, plan.entry], applied: [] })
  const c = bench.add('c')
  t.same(c.status(bench.now).voters, ['c'])
  bench.advance(DEFAULT_TIMING.electionTimeoutMaxMs + 100)
  t.same(bench.leaders(), ['c'], 'it elects itself once its start-up promise ran out')
  t.ok(c.isActingLeader(bench.now))
  t.equal(c.currentTerm, plan.hardState.term + 1, 'in the term after the recovery term')
  t.same(bench.disk.get('c')!.applied.map((e) => e.index), [1, 2, 3, 4, 5], 'the old entries, the recovery config and its no-op all commit')
  t.match(c.propose({ n: 'after' }, bench.now), { index: 6 }, 'and it takes new commands')
})

t.test('a plan built from a log the core accepts is one the core accepts again', async (t) => {
  const old = log(1, 1, 4, 4)
  const plan = forcedRecovery('b', { term: 6, votedFor: null }, old)
  t.doesNotThrow(() => new Raft({ id: 'b', hardState: plan.hardState, log: [...old, plan.entry], timing: DEFAULT_TIMING, random: () => 0.5, now: 0 }))
})
