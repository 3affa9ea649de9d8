/**
 * The Raft state machine driven by hand: a tiny synchronous bench (bench.ts)
 * delivers messages in order (with optional cut links) so each rule can be
 * checked in isolation. Randomised behaviour is the simulation's job (sim.test.ts).
 */
import t from 'tap'
import { Raft, RaftInvariantError } from '../../mesh/election/raft/raft.ts'
import { DEFAULT_TIMING, leaseMs } from '../../mesh/election/raft/timing.ts'
import type { Entry, Message } from '../../mesh/election/raft/types.ts'
import { Bench, three } from './bench.ts'

const LEASE = leaseMs(DEFAULT_TIMING)

t.test('a fresh node with no config never campaigns', async (t) => {
  const b = new Bench()
  const raft = b.add('x')
  b.advance(10_000)
  t.equal(raft.currentRole, 'follower')
  t.equal(raft.currentTerm, 0)
  t.same(b.sent, [])
  t.match(raft.status(b.now).reason, { code: 'no_config' })
})

t.test('a single voter elects itself, acts, and commits at once', async (t) => {
  const b = new Bench()
  const raft = b.add('a', { bootstrap: ['a'] })
  t.same(b.disk.get('a')!.log, [], 'bootstrap is only durable once drained')
  b.advance(1499)
  t.equal(raft.currentRole, 'follower', 'no campaign before the minimum timeout')
  b.advance(1000)
  t.equal(raft.currentRole, 'leader')
  t.equal(raft.currentTerm, 2, 'bootstrap is term 1; the first election term 2')
  t.ok(raft.isActingLeader(b.now))
  const p = raft.propose({ burst: 1 }, b.now)
  t.same(p, { index: 3, term: 2 })
  b.settle()
  t.same(b.disk.get('a')!.applied.map(e => e.kind), ['config', 'noop', 'command'])
})

t.test('three voters: pre-vote, vote, a no-op, and a lease after one round', async (t) => {
  const b = three()
  b.advance(1700)
  t.same(b.leaders(), ['a'], 'the node with the shortest timeout wins')
  const a = b.get('a')
  const prevotes = b.sent.filter(m => m.type === 'prevote')
  t.ok(prevotes.length >= 2 && prevotes.every(m => m.term === 2), 'pre-votes ask for term 2')
  t.equal(a.currentTerm, 2)
  t.ok(a.isActingLeader(b.now))
  const s = a.status(b.now)
  t.match(s, { role: 'leader', leader: 'a', term: 2, commitIndex: 2, lastIndex: 2, voters: ['a', 'b', 'c'], acting: true, reason: null })
  t.ok(s.leaseUntil! > b.now && s.leaseUntil! <= b.now + LEASE)
  t.same(b.disk.get('b')!.applied.map(e => e.kind), [], 'followers learn the commit with the next round')
  b.advance(600)
  t.same(b.disk.get('b')!.applied.map(e => e.kind), ['config', 'noop'])
  t.match(b.get('b').status(b.now), { role: 'follower', leader: 'a', reason: null })
})

t.test('stickiness: a follower that heard from its leader ignores (pre)votes and keeps its term', async (t) => {
  const b = three()
  b.advance(1700)
  const c = b.get('c')
  const term = c.currentTerm
  c.step({ type: 'prevote', from: 'b', to: 'c', term: term + 1, lastLogIndex: 99, lastLogTerm: 99 }, b.now)
  c.step({ type: 'vote', from: 'b', to: 'c', term: term + 5, lastLogIndex: 99, lastLogTerm: 99 }, b.now)
  const rd = c.ready()
  t.same(rd.messages, [], 'no reply at all')
  t.equal(rd.hardState, undefined)
  t.equal(c.currentTerm, term)
})

t.test('a partitioned node does not inflate terms, and rejoins without disrupting the leader', async (t) => {
  const b = three()
  b.advance(1700)
  b.isolate('c')
  b.advance(20_000)
  t.equal(b.get('c').currentTerm, 2, 'pre-votes that nobody answers never bump the term')
  t.match(b.get('c').status(b.now).reason, { code: 'no_quorum', text: 'no_quorum: 1 of 3 voters reachable, 2 needed' })
  b.cut.clear()
  b.advance(1000)
  t.same(b.leaders(), ['a'])
  t.equal(b.get('a').currentTerm, 2)
  t.match(b.get('c').status(b.now), { leader: 'a', role: 'follower' })
})

t.test('a restarted node grants no vote for electionTimeoutMin', async (t) => {
  const raft = new Raft({ id: 'x', hardState: { term: 3, votedFor: null }, log: [{ index: 1, term: 1, kind: 'config', data: { voters: ['x', 'y', 'z'] } }], timing: DEFAULT_TIMING, random: () => 0.5, now: 10_000 })
  const vote = (now: number): Message[] => {
    raft.step({ type: 'vote', from: 'y', to: 'x', term: 4, lastLogIndex: 1, lastLogTerm: 1 }, now)
    return raft.ready().messages
  }
  t.same(vote(11_499), [], 'inside the start-up promise: ignored')
  t.equal(raft.currentTerm, 3)
  t.same(vote(11_500), [{ type: 'vote_resp', from: 'x', to: 'y', term: 4, granted: true }])
})

t.test('a vote is persisted in the same Ready as the reply that reveals it', async (t) => {
  const raft = new Raft({ id: 'x', hardState: { term: 3, votedFor: null }, log: [{ index: 1, term: 1, kind: 'config', data: { voters: ['x', 'y', 'z'] } }], timing: DEFAULT_TIMING, random: () => 0.5, now: 0 })
  raft.step({ type: 'vote', from: 'y', to: 'x', term: 5, lastLogIndex: 1, lastLogTerm: 1 }, 2000)
  const rd = raft.ready()
  t.same(rd.hardState, { term: 5, votedFor: 'y' })
  t.same(rd.messages, [{ type: 'vote_resp', from: 'x', to: 'y', term: 5, granted: true }])
  raft.step({ type: 'vote', from: 'z', to: 'x', term: 5, lastLogIndex: 1, lastLogTerm: 1 }, 2001)
  t.same(raft.ready().messages, [{ type: 'vote_resp', from: 'x', to: 'z', term: 5, granted: false }], 'one vote per term')
})

t.test('a vote is refused to a candidate with a less up-to-date log', async (t) => {
  const log: Entry[] = [{ index: 1, term: 1, kind: 'config', data: { voters: ['x', 'y'] } }, { index: 2, term: 3, kind: 'noop', data: null }]
  const raft = new Raft({ id: 'x', hardState: { term: 3, votedFor: null }, log, timing: DEFAULT_TIMING, random: () => 0.5, now: 0 })
  raft.step({ type: 'vote', from: 'y', to: 'x', term: 4, lastLogIndex: 5, lastLogTerm: 2 }, 2000)
  t.same(raft.ready().messages, [{ type: 'vote_resp', from: 'x', to: 'y', term: 4, granted: false }])
  raft.step({ type: 'prevote', from: 'y', to: 'x', term: 5, lastLogIndex: 2, lastLogTerm: 3 }, 2001)
  t.same(raft.ready().messages, [{ type: 'prevote_resp', from: 'x', to: 'y', term: 5, granted: true }])
  t.equal(raft.currentTerm, 4, 'a pre-vote changes no term')
})

t.test('check-quorum: a leader cut off from everyone stops acting when its lease ends, steps down after electionTimeoutMin', async (t) => {
  const b = three()
  b.advance(1700)
  const a = b.get('a')
  const lastRound = b.now
  b.isolate('a')
  let stoppedActing = -1
  let steppedDown = -1
  while (b.now < lastRound + 3000) {
    b.advance(10)
    if (stoppedActing < 0 && !a.isActingLeader(b.now)) stoppedActing = b.now
    if (steppedDown < 0 && a.currentRole !== 'leader') steppedDown = b.now
  }
  t.ok(stoppedActing > 0 && stoppedActing <= lastRound + 500 + LEASE, `stopped acting at +${stoppedActing - lastRound} ms`)
  t.ok(steppedDown > 0 && steppedDown <= lastRound + 1500 + 20, `stepped down at +${steppedDown - lastRound} ms`)
  b.advance(3000)
  t.match(a.status(b.now).reason, { code: 'no_quorum', text: 'no_quorum: 1 of 3 voters reachable, 2 needed' })
})

t.test('a leader that comes back finds a newer term, steps down, and loses its uncommitted entries', async (t) => {
  const b = three()
  b.advance(1700)
  b.advance(600)
  const a = b.get('a')
  b.isolate('a')
  const lost = a.propose('lost', b.now)
  t.same(lost, { index: 3, term: 2 })
  b.advance(5000)
  const [leader] = b.leaders().filter(id => id !== 'a')
  t.ok(leader !== undefined, 'the majority elected a new leader')
  b.get(leader!).propose('kept', b.now)
  b.cut.clear()
  b.advance(1000)
  t.equal(a.currentRole, 'follower')
  t.equal(a.currentTerm, b.get(leader!).currentTerm)
  const applied = b.disk.get('a')!.applied
  t.notOk(applied.some(e => e.data === 'lost'), 'the entry only the old leader had is gone')
  t.ok(applied.some(e => e.data === 'kept'))
  t.ok(b.disk.get('a')!.log.every(e => e.data !== 'lost'), 'and truncated from its disk')
})

t.test('a rejected append carries a hint that skips the conflicting term', async (t) => {
  const voters = { index: 1, term: 1, kind: 'config' as const, data: { voters: ['x', 'y'] } }
  const log: Entry[] = [voters, ...[2, 3, 4, 5, 6].map(i => ({ index: i, term: 2, kind: 'command' as const, data: i }))]
  const raft = new Raft({ id: 'x', hardState: { term: 2, votedFor: null }, log, timing: DEFAULT_TIMING, random: () => 0.5, now: 0 })
  raft.step({ type: 'append', from: 'y', to: 'x', term: 4, prevIndex: 6, prevTerm: 3, entries: [], commit: 1, round: 7 }, 10)
  t.same(raft.ready().messages, [{ type: 'append_resp', from: 'x', to: 'y', term: 4, round: 7, success: false, rejectIndex: 6, hintIndex: 2, hintTerm: 2 }])
  raft.step({ type: 'append', from: 'y', to: 'x', term: 4, prevIndex: 9, prevTerm: 3, entries: [], commit: 1, round: 8 }, 20)
  t.same(raft.ready().messages, [{ type: 'append_resp', from: 'x', to: 'y', term: 4, round: 8, success: false, rejectIndex: 9, hintIndex: 7, hintTerm: 0 }])
  raft.step({ type: 'append', from: 'y', to: 'x', term: 4, prevIndex: 1, prevTerm: 1, entries: [{ index: 2, term: 3, kind: 'noop', data: null }], commit: 2, round: 9 }, 30)
  const rd = raft.ready()
  t.equal(rd.truncateFrom, 2)
  t.same(rd.append.map(e => [e.index, e.term]), [[2, 3]])
  t.same(rd.committed.map(e => e.index), [1, 2])
  t.same(rd.messages, [{ type: 'append_resp', from: 'x', to: 'y', term: 4, round: 9, success: true, matchIndex: 2 }])
})

t.test('an append that would truncate a committed entry is a loud failure', async (t) => {
  const log: Entry[] = [{ index: 1, term: 1, kind: 'config', data: { voters: ['x', 'y'] } }, { index: 2, term: 2, kind: 'command', data: 'c' }]
  const raft = new Raft({ id: 'x', hardState: { term: 2, votedFor: null }, log, timing: DEFAULT_TIMING, random: () => 0.5, now: 0, applied: 2 })
  t.throws(() => raft.step({ type: 'append', from: 'y', to: 'x', term: 3, prevIndex: 1, prevTerm: 1, entries: [{ index: 2, term: 3, kind: 'noop', data: null }], commit: 2, round: 1 }, 10), RaftInvariantError)
})

t.test('a leader catches a lagging follower up from an empty log, and the follower learns the config', async (t) => {
  const b = three()
  b.advance(1700)
  for (let i = 0; i < 150; i++) b.get('a').propose(i, b.now)
  b.settle()
  const d = b.add('d')
  t.equal(d.status(b.now).reason?.code, 'no_config')
  t.same(b.get('a').proposeConfig({ add: 'd' }, b.now), { index: 153, term: 2 })
  b.advance(1000)
  t.equal(b.disk.get('d')!.applied.length, 153)
  t.same(d.status(b.now).voters, ['a', 'b', 'c', 'd'])
  t.equal(d.status(b.now).leader, 'a')
})

t.test('config change guard rails', async (t) => {
  const b = three()
  b.advance(1600)
  const a = b.get('a')
  t.same(b.leaders(), ['a'])
  t.same(b.get('b').proposeConfig({ add: 'd' }, b.now), { error: 'not_leader', leader: 'a' })
  t.same(b.get('b').propose('x', b.now), { error: 'not_leader', leader: 'a' })
  t.same(a.proposeConfig({ add: 'a' }, b.now), { error: 'no_change' })
  t.same(a.proposeConfig({ remove: 'z' }, b.now), { error: 'no_change' })
  t.same(a.proposeConfig({ add: '' }, b.now), { error: 'invalid_id' })
  b.isolate('a')
  t.same(a.proposeConfig({ add: 'd' }, b.now), { index: 3, term: 2 })
  t.same(a.proposeConfig({ add: 'e' }, b.now), { error: 'change_in_progress' }, 'one uncommitted change at a time')
  t.same(a.status(b.now).voters, ['a', 'b', 'c', 'd'], 'in effect as soon as appended')

  const solo = new Bench()
  const s = solo.add('s', { bootstrap: ['s'] })
  solo.advance(2300)
  t.same(s.proposeConfig({ remove: 's' }, solo.now), { error: 'last_voter' })
})

t.test('a new leader may not change config before committing an entry of its term', async (t) => {
  const b = three()
  b.advance(2300) // a leads term 2; everyone knows the config and no-op are committed
  b.isolate('a')
  b.drop = m => m.type === 'append_resp' // the next leader is elected but hears no acknowledgement
  while (b.leaders().every(id => id === 'a') && b.now < 10_000) b.advance(10)
  const [leader] = b.leaders().filter(id => id !== 'a')
  const l = b.get(leader!)
  t.equal(l.currentRole, 'leader')
  t.same(l.proposeConfig({ add: 'd' }, b.now), { error: 'leader_not_ready' })
  t.notOk(l.isActingLeader(b.now), 'nor may it act')
  t.match(l.status(b.now).reason, { code: 'lease_pending' })
})

t.test('a removed leader stops acting at once, steps down when its removal commits, and the rest elect a leader', async (t) => {
  const b = three()
  b.advance(1700)
  const a = b.get('a')
  t.same(a.proposeConfig({ remove: 'a' }, b.now), { index: 3, term: 2 })
  t.notOk(a.isActingLeader(b.now), 'a leader outside its own config does not act')
  b.settle()
  b.advance(10)
  t.equal(a.currentRole, 'follower')
  t.match(a.status(b.now).reason, { code: 'not_a_voter' })
  b.advance(3000)
  const leaders = b.leaders()
  t.equal(leaders.length, 1)
  t.not(leaders[0], 'a')
  t.same(b.get(leaders[0]!).status(b.now).voters, ['b', 'c'])
  b.advance(10_000)
  t.equal(a.currentTerm, 2, 'the removed node never campaigns')
})

t.test('a restart with the applied index does not hand out applied entries again', async (t) => {
  const b = three()
  b.advance(1700)
  b.get('a').propose('p', b.now)
  b.advance(600)
  const applied = b.disk.get('b')!.applied.length
  t.equal(applied, 3)
  const b2 = b.add('b')
  t.equal(b2.currentCommit, 3)
  t.same(b2.ready().committed, [])
  b.advance(600)
  t.equal(b.disk.get('b')!.applied.length, 3)
})

t.test('the clock must not run backwards', async (t) => {
  const b = three()
  b.advance(100)
  t.throws(() => b.get('a').tick(50), RangeError)
})

t.test('wakeAt says when to tick next', async (t) => {
  const b = three()
  t.equal(b.get('a').wakeAt(), 1575, 'a follower wakes at its election deadline')
  b.advance(1700)
  const w = b.get('a').wakeAt()
  t.ok(w > b.now && w <= b.now + 500, 'a leader wakes for its next heartbeat')
})

t.test('an entry of an earlier term is never committed by counting replicas (thesis §3.6.2, Figure 8)', async (t) => {
  // s1 and s2 hold 64 entries of term 2 that never committed; s5 holds a
  // different entry of term 3 at index 2. s1 wins term 4 and copies the term-2
  // entries to s3 and s4 in one full batch, but its no-op (index 66) is lost
  // on the way: the term-2 entries are now on a majority. Committing them by
  // counting would be wrong — s5 can still win term 5 (its last term, 3, is
  // newer than 2) and overwrite them.
  const b = new Bench()
  const c1: Entry = { index: 1, term: 1, kind: 'config', data: { voters: ['s1', 's2', 's3', 's4', 's5'] } }
  const old: Entry[] = Array.from({ length: 64 }, (_, i) => ({ index: i + 2, term: 2, kind: 'command', data: `x${i + 2}` }))
  const disk = (log: Entry[]) => ({ hs: { term: 3, votedFor: null }, log, applied: [] })
  b.disk.set('s1', disk([c1, ...old]))
  b.disk.set('s2', disk([c1, ...old]))
  b.disk.set('s3', disk([c1]))
  b.disk.set('s4', disk([c1]))
  b.disk.set('s5', disk([c1, { index: 2, term: 3, kind: 'command', data: 'y2' }]))
  b.add('s1', { random: 0 })
  for (const id of ['s2', 's3', 's4']) b.add(id, { random: 0.99 })
  b.add('s5', { random: 0 })
  b.isolate('s5')
  // Lose every append to s2, and the no-op on its way to anyone who would
  // accept it (the first probes, which s3 and s4 reject, get through).
  b.drop = m => m.type === 'append' && (m.to === 's2' || (m.entries.some(e => e.index === 66) && b.get(m.to).status(b.now).lastIndex >= 65))
  b.advance(1600)
  const s1 = b.get('s1')
  t.equal(s1.currentRole, 'leader')
  t.equal(s1.currentTerm, 4)
  t.equal(b.get('s3').status(b.now).lastIndex, 65, 'the term-2 entries reached s3 (and s4): a majority holds them')
  t.equal(s1.currentCommit, 0, 'but they are not committed: no entry of term 4 is on a majority')
  t.same(b.disk.get('s1')!.applied, [])

  // s1 dies before its no-op spreads; s5 takes over and overwrites them.
  b.drop = () => false
  b.cut.clear()
  b.isolate('s1')
  b.advance(8000)
  t.same(b.leaders().filter(id => id !== 's1'), ['s5'])
  for (const id of ['s2', 's3', 's4', 's5']) {
    t.equal(b.disk.get(id)!.applied.find(e => e.index === 2)?.data, 'y2', `${id} applied s5's entry at index 2`)
  }
})

t.test('catchUp: a server is replicated to as a non-voter, reported caught up once it answers, never counted before', async (t) => {
  const b = new Bench()
  const a = b.add('a', { bootstrap: ['a'] })
  b.advance(2500)
  t.equal(a.currentRole, 'leader')
  b.add('x')
  b.cut.add('a>x') // x cannot hear us yet
  t.equal(a.catchUp('x', b.now), 'catching_up')
  b.advance(3000)
  t.equal(a.currentRole, 'leader', 'a learner that never answers does not cost the group its leader')
  t.ok(a.isActingLeader(b.now), 'nor its lease: it is in no majority')
  t.equal(a.catchUp('x', b.now), 'catching_up')
  b.cut.clear()
  b.advance(600)
  t.equal(a.catchUp('x', b.now), 'caught_up')
  t.same(b.get('x').logSlice().map(e => e.kind), ['config', 'noop'], 'the learner holds the log')
  t.ok(!('error' in a.proposeConfig({ add: 'x' }, b.now)))
  b.advance(600)
  t.same(a.status(b.now).voters, ['a', 'x'])
  t.equal(a.catchUp('x', b.now), 'no_change', 'a voter is not a learner')
  t.equal(b.get('x').currentRole, 'follower')
  t.equal(a.catchUp('y', b.now), 'catching_up')
  t.equal(a.catchUp(null, b.now), 'no_change', 'null stops catching up')
  t.equal(b.get('x').catchUp('y', b.now), 'not_leader')
})

t.test('a follower that wiped its log is caught up again from scratch, not probed above its log forever', async (t) => {
  const b = new Bench()
  const a = b.add('a', { bootstrap: ['a'] })
  b.advance(2500)
  b.add('x')
  a.catchUp('x', b.now)
  b.advance(600)
  a.proposeConfig({ add: 'x' }, b.now)
  b.advance(600)
  const p = a.propose('before', b.now)
  b.advance(600)
  t.ok('index' in p && a.currentCommit >= p.index)
  // x leaves the group and is adopted back with nothing (service.ts: a yield wipes the store).
  b.disk.delete('x')
  b.add('x')
  b.advance(1000)
  t.same(b.get('x').logSlice().map(e => e.data), a.logSlice().map(e => e.data), 'x holds the whole log again')
  t.equal(a.currentRole, 'leader')
  const q = a.propose('after', b.now)
  b.advance(600)
  t.ok('index' in q && a.currentCommit >= q.index, 'and the group commits with it')
})

t.test('a follower stalled past its timeout reads the leader\'s queued append before it campaigns', async (t) => {
  const b = three()
  b.advance(1700)
  t.same(b.leaders(), ['a'])
  const c = b.get('c')
  const heartbeat = b.sent.filter(m => m.type === 'append' && m.to === 'c').at(-1)!
  // c's process hangs for 4 s; meanwhile the leader's append waits in its socket.
  b.now += 4000
  b.sent.length = 0
  c.tick(b.now) // Node runs the overdue timer first...
  t.equal(c.currentRole, 'follower', 'no pre-vote on the late tick')
  t.same(c.ready().messages, [])
  c.step(heartbeat, b.now) // ...then the queued I/O
  t.equal(c.currentLeader, 'a')
  c.tick(b.now + 260)
  t.equal(c.currentRole, 'follower', 'the leader was heard: no campaign')
})

t.test('a follower stalled while the leader really died campaigns one grace later', async (t) => {
  const b = three()
  b.advance(1700)
  b.nodes.delete('a')
  const c = b.get('c')
  b.now += 4000
  c.tick(b.now)
  t.equal(c.currentRole, 'follower', 'the late tick only grants a grace')
  c.tick(b.now + 260)
  t.equal(c.currentRole, 'precandidate', 'then it campaigns: at most half a heartbeat lost')
})

t.test('a leader stalled past check-quorum does not step down before reading the queued acks', async (t) => {
  const b = three()
  b.advance(1700)
  const a = b.get('a')
  b.settle()
  b.now += 3000 // a hangs; its followers' acks would be queued, but none can come: it sent nothing
  a.tick(b.now)
  t.equal(a.currentRole, 'leader', 'the late tick sends a round instead of stepping down')
  b.settle() // the round is answered
  a.tick(b.now + 260)
  t.equal(a.currentRole, 'leader')
  t.ok(a.isActingLeader(b.now + 260), 'and the lease is live again from the answered round')
})
