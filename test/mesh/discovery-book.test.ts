/**
 * What discovery remembers and dials (mesh/discovery/book.ts, planner.ts),
 * on a fake clock: caps per peer and in total, hints that expire and are
 * given up, the operator's join addresses, and — as properties over any
 * sequence of what peers may send — never more remembered than the caps and
 * never more addresses dialled than the budget allows.
 */
import t from 'tap'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { AddressBook, cleanAddrs } from '../../mesh/discovery/book.ts'
import { DialPlanner, dialCost } from '../../mesh/discovery/planner.ts'
import * as K from '../../mesh/discovery/constants.ts'

async function peerIds (n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
}

const ids = await peerIds(4096 + 64)
const port = (i: number): string => `/ip4/127.0.0.1/tcp/${1024 + (i % 60_000)}`
const addrsOf = (n: number, base = 0): string[] => Array.from({ length: n }, (_, i) => port(base + i))
const never = (): boolean => false

t.test('cleanAddrs keeps at most 8 addresses that are the peer\'s own, each ending in /p2p/<peer>', async (t) => {
  const [a, b] = [ids[0]!, ids[1]!]
  t.same(cleanAddrs(a, [port(1)], 8), [`${port(1)}/p2p/${a}`], '/p2p/ is appended')
  t.same(cleanAddrs(a, [`${port(1)}/p2p/${a}`, port(1)], 8), [`${port(1)}/p2p/${a}`], 'duplicates are dropped')
  t.same(cleanAddrs(a, [`${port(2)}/p2p/${b}`], 8), [], 'an address of another peer is not this one\'s')
  t.same(cleanAddrs(a, [`${port(2)}/p2p/${b}/p2p-circuit/p2p/${a}`], 8), [], 'no relays')
  t.same(cleanAddrs(a, ['/ip4/1.2.3.4/tcp/99999', '/foo', '', 'x'.repeat(300)], 8), [], 'garbage is dropped')
  t.equal(cleanAddrs(a, addrsOf(32), K.MAX_ADDRS_PER_PEER).length, 8, 'a heartbeat\'s 32 addresses are cut to 8')
})

t.test('a book of 4,096 made-up members seeds 64 hints, tried twice each, then not again', async (t) => {
  let now = 1_000_000
  const book = new AddressBook({}, () => 0.5)
  const fake = ids.slice(0, 4096)
  let taken = 0
  for (const id of fake) if (book.hint(id, addrsOf(32, taken), now)) taken++
  t.equal(taken, K.MAX_HINTS, 'only MAX_HINTS are taken')
  t.equal(book.counts().hint, K.MAX_HINTS)
  t.ok([...fake.slice(0, 64)].every((id) => book.get(id)!.addrs.length === K.MAX_ADDRS_PER_PEER), '8 addresses each')
  t.equal(fake.filter((id) => book.hint(id, addrsOf(1), now)).length, 0, 'pushing the book again changes nothing')

  // Each hint fails twice: then it is gone and tombstoned.
  t.ok(fake.slice(0, 64).every((id) => book.failed(id, now) === null), 'the first failure backs off')
  t.ok(book.get(fake[0]!)!.nextAt >= now + 750, 'back-off of about a second')
  t.ok(fake.slice(0, 64).every((id) => book.failed(id, now)?.key === id), 'the second gives it up')
  t.equal(book.peerCount, 0, 'nothing left')
  let checked = 0
  t.equal(fake.slice(0, 64).filter((id) => book.hint(id, addrsOf(1), now, () => { checked++; return true })).length, 0, 'given-up hints are not taken again from the next book')
  t.equal(checked, 0, '(nor is their id parsed again)')
  t.notOk(book.hint(fake[200]!, addrsOf(1), now, () => false), 'an id that is not a peer id is refused')
  t.equal(fake.slice(64, 128).filter((id) => book.hint(id, addrsOf(1), now)).length, 64, 'new ones are, into the freed room')
  now += K.HINT_TTL_MS
  t.equal(book.expire(now).length, 64, 'unheard hints expire after HINT_TTL_MS')
  now += K.HINT_TOMBSTONE_MS
  book.expire(now)
  t.ok(book.hint(fake[0]!, addrsOf(1), now), 'a tombstone ends')
})

t.test('a member\'s own signed record replaces a hint about it', async (t) => {
  const now = 0
  const book = new AddressBook()
  const id = ids[0]!
  book.hint(id, ['/ip4/127.0.0.1/tcp/9'], now)
  book.failed(id, now)
  t.ok(book.member(id, ['/ip4/127.0.0.1/tcp/4001'], now))
  const m = book.get(id)!
  t.equal(m.source, 'member')
  t.same(m.addrs, [`/ip4/127.0.0.1/tcp/4001/p2p/${id}`], 'the hinted address is gone')
  t.equal(m.failures, 0)
  t.same(book.counts(), { join: 0, bootstrap: 0, member: 1, remembered: 0, hint: 0 })
  t.equal(book.failed(id, now), null, 'members are not given up by failures (membership forgets them)')
  t.ok(book.memberGone(id))
  t.equal(book.peerCount, 0)
})

t.test('the total cap: a full book makes room for a member only from hints and failing peers', async (t) => {
  const book = new AddressBook({ maxPeers: 4, maxHints: 2 })
  t.ok(book.hint(ids[0]!, addrsOf(1), 0))
  t.ok(book.remember(ids[1]!, addrsOf(1), 0))
  t.ok(book.member(ids[2]!, addrsOf(1), 0))
  t.ok(book.member(ids[3]!, addrsOf(1), 0))
  t.notOk(book.remember(ids[4]!, addrsOf(1), 0), 'a remembered peer never displaces anything')
  t.notOk(book.hint(ids[4]!, addrsOf(1), 0), 'nor does a hint')
  t.ok(book.member(ids[4]!, addrsOf(1), 0), 'a member displaces the hint')
  t.equal(book.get(ids[0]!), undefined)
  t.notOk(book.member(ids[5]!, addrsOf(1), 0), 'no peer is failing: no room')
  book.failed(ids[3]!, 0)
  book.failed(ids[3]!, 0)
  book.failed(ids[1]!, 0)
  t.ok(book.member(ids[5]!, addrsOf(1), 0), 'room from the peer failing most')
  t.equal(book.get(ids[3]!), undefined)
  t.equal(book.peerCount, 4)
})

t.test('a remembered peer is given up after a run of failures; join addresses never, until forgotten', async (t) => {
  let now = 0
  const book = new AddressBook({}, () => 0.5)
  const join = `/ip4/127.0.0.1/tcp/4001/p2p/${ids[1]!}`
  book.remember(ids[0]!, addrsOf(1), now)
  book.addOperator(join, 'join', now)
  book.addOperator('/ip4/127.0.0.1/tcp/4002', 'bootstrap', now)
  const delays: number[] = []
  for (let i = 1; i < K.REMEMBERED_MAX_FAILURES; i++) {
    t.equal(book.failed(ids[0]!, now), null)
    const next = book.get(ids[0]!)!.nextAt
    delays.push(next - now)
    now = next
  }
  t.same(delays.slice(0, 3), [500, 1000, 2000], 'the back-off of mesh/backoff.ts, doubling')
  t.equal(Math.max(...delays), 30_000, 'capped at 30 s')
  t.equal(book.failed(ids[0]!, now)?.key, ids[0], `gone after ${K.REMEMBERED_MAX_FAILURES} failures`)
  for (let i = 0; i < 100; i++) book.failed(join, now)
  t.ok(book.get(join), 'a join address is never given up')
  t.equal(book.get(join)!.nextAt - now, 60_000, 'it is dialled once a minute at most')
  book.connected(ids[1]!)
  t.equal(book.get(join)!.failures, 0, 'a connection to its peer resets its back-off')
  t.notOk(book.forgetJoin('/ip4/127.0.0.1/tcp/4002'), 'a bootstrap address belongs to the config')
  t.ok(book.forgetJoin(join))
  t.same(book.operatorTargets().map((x) => x.key), ['/ip4/127.0.0.1/tcp/4002'])
})

t.test('the planner: join addresses first, the shared budget, the hint budget, slots', async (t) => {
  const now = 0
  const book = new AddressBook()
  const planner = new DialPlanner(book, now, { burst: 10, ratePerS: 1, hintBurst: 2, hintRatePerS: 0.1, maxParallel: 100 })
  for (let i = 0; i < 10; i++) book.hint(ids[i]!, addrsOf(1, i), now)
  book.member(ids[20]!, addrsOf(3), now)
  book.addOperator('/ip4/127.0.0.1/tcp/1', 'join', now)
  const first = planner.next(now, 5000, never)
  t.same(first.map((x) => x.source), ['join', 'member', 'hint', 'hint'], 'join, then the member, then two hints (their own budget)')
  t.equal(first.reduce((s, x) => s + dialCost(x), 0), 1 + 3 + 2)
  t.same(planner.next(now, 5000, never), [], 'nothing twice while in flight, and the hint budget is spent')
  for (const x of first) planner.done(x.key, false, now)
  t.same(planner.next(now + 300, 5000, never).map((x) => x.source), [], 'backed off')
  const later = planner.next(now + 30_000, 5000, never)
  t.ok(later.reduce((s, x) => s + dialCost(x), 0) <= 10, 'never more than the burst at once')
  const slots = new DialPlanner(new AddressBook(), now, { maxParallel: 2 })
  for (let i = 0; i < 5; i++) slots.book.member(ids[i]!, addrsOf(1), now)
  t.equal(slots.next(now, 5000, never).length, 2, 'at most maxParallel in flight')
  t.equal(slots.next(now, 5000, never).length, 0)
})

/** What a peer may do to a node, one step at a time. */
type Op =
  | { kind: 'book', from: number, count: number, addrs: number }
  | { kind: 'member', id: number, addrs: number }
  | { kind: 'gone', id: number }
  | { kind: 'connect', id: number }
  | { kind: 'wait', ms: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('book' as const), from: fc.nat(ids.length - 1), count: fc.integer({ min: 1, max: 4096 }), addrs: fc.integer({ min: 0, max: 32 }) }),
  fc.record({ kind: fc.constant('member' as const), id: fc.nat(ids.length - 1), addrs: fc.integer({ min: 0, max: 32 }) }),
  fc.record({ kind: fc.constant('gone' as const), id: fc.nat(ids.length - 1) }),
  fc.record({ kind: fc.constant('connect' as const), id: fc.nat(ids.length - 1) }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 120_000 }) })
)

/**
 * Runs the planner as the service does (a tick every 500 ms, every dial
 * failing after `dialMs`: nobody listens at the addresses) through the ops,
 * checking the caps after each step; returns when each address was dialled.
 */
function simulate (ops: Op[], limits: { maxPeers?: number, maxHints?: number }, dialMs: number, check: (book: AddressBook) => void): number[] {
  let now = 0
  const book = new AddressBook(limits, () => 0.5)
  const planner = new DialPlanner(book, now)
  const inflight: Array<{ key: string, endsAt: number }> = []
  const dialledAt: number[] = []
  const advance = (until: number): void => {
    while (now < until) {
      now = Math.min(until, now + 500)
      for (let i = inflight.length - 1; i >= 0; i--) {
        if (inflight[i]!.endsAt <= now) { planner.done(inflight[i]!.key, false, now); inflight.splice(i, 1) }
      }
      book.expire(now)
      for (const x of planner.next(now, 5000, never)) {
        for (let i = 0; i < dialCost(x); i++) dialledAt.push(now)
        inflight.push({ key: x.key, endsAt: now + dialMs })
      }
      check(book)
    }
  }
  for (const op of ops) {
    if (op.kind === 'book') {
      const addrs = addrsOf(op.addrs, op.from)
      for (let i = 0; i < op.count; i++) book.hint(ids[(op.from + i) % ids.length]!, addrs, now)
    } else if (op.kind === 'member') book.member(ids[op.id]!, addrsOf(op.addrs, op.id), now)
    else if (op.kind === 'gone') book.memberGone(ids[op.id]!)
    else if (op.kind === 'connect') book.connected(ids[op.id]!)
    else advance(now + op.ms)
    check(book)
  }
  advance(now + 60_000)
  return dialledAt
}

t.test('property: never more remembered than the caps, never more than 8 addresses a peer, whatever peers send', async (t) => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 40 }), fc.integer({ min: 50, max: 6000 }), (ops, dialMs) => {
    simulate(ops, { maxPeers: 200, maxHints: 16 }, dialMs, (book) => {
      const c = book.counts()
      if (book.peerCount > 200 || c.hint > 16) throw new Error(`over the caps: ${JSON.stringify(c)}`)
      for (const x of book.due(Number.MAX_SAFE_INTEGER, never)) if (x.addrs.length > K.MAX_ADDRS_PER_PEER) throw new Error('too many addresses')
    })
  }), { numRuns: 60 })
  t.pass('caps held over every run')
})

t.test('property: never more than DIAL_BURST + DIAL_RATE_PER_S·T addresses dialled in any T seconds', async (t) => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 40 }), fc.integer({ min: 50, max: 6000 }), (ops, dialMs) => {
    const at = simulate(ops, {}, dialMs, () => {})
    // Every window starting at a dial (the worst case starts at one).
    for (let i = 0, j = 0; i < at.length; i++) {
      for (const windowMs of [1000, 10_000, 60_000]) {
        j = i
        while (j < at.length && at[j]! < at[i]! + windowMs) j++
        const bound = K.DIAL_BURST + K.DIAL_RATE_PER_S * windowMs / 1000
        if (j - i > bound) throw new Error(`${j - i} addresses dialled in ${windowMs} ms from ${at[i]}, bound ${bound}`)
      }
    }
  }), { numRuns: 60 })
  t.pass('the dial budget held over every run')
})

t.test('ten minutes of 4,096-member books pushed every second, and 1,000 made-up members: the budget is what is dialled', async (t) => {
  const ops: Op[] = []
  for (let s = 0; s < 600; s++) {
    ops.push({ kind: 'book', from: (s * 97) % 4096, count: 4096, addrs: 32 })
    if (s < 1000 / 2) ops.push({ kind: 'member', id: (s * 2) % ids.length, addrs: 32 }, { kind: 'member', id: (s * 2 + 1) % ids.length, addrs: 32 })
    ops.push({ kind: 'wait', ms: 1000 })
  }
  let maxPeers = 0
  const at = simulate(ops, {}, 1, (book) => { maxPeers = Math.max(maxPeers, book.peerCount) })
  const seconds = at[at.length - 1]! / 1000
  t.ok(at.length > K.DIAL_BURST, `dials happened (${at.length} addresses)`)
  t.ok(at.length <= K.DIAL_BURST + K.DIAL_RATE_PER_S * seconds, `${at.length} addresses in ${seconds} s: at most ${K.DIAL_RATE_PER_S}/s after the burst`)
  t.ok(maxPeers <= K.MAX_PEERS, `at most ${K.MAX_PEERS} peers remembered (${maxPeers})`)
})
