import t from 'tap'
import { parseEntry, type LedgerEntry, type RecordState } from '../../daemon/leader/ledger/entries.ts'
import {
  applyChecked,
  answerFor,
  byState,
  capacityRefused,
  committedPerHour,
  emptyLedger,
  getRecord,
  projectedPerHour,
  rebuild,
  type LedgerState
} from '../../daemon/leader/ledger/ledger.ts'
import { spend } from '../../daemon/leader/ledger/spend.ts'
import { HOUR, MIN, T0, at, offering } from './fixtures.ts'

const spotA = offering('aws', 'aws', 0.2, { zone: 'a', spot: true })

const E = {
  intent: (key: string, t0 = T0, price = 0.2, term = 1): LedgerEntry => ({ ...at(t0, term), type: 'instance.intent', key, decisionId: 'd1-0', offering: { ...spotA, pricePerHour: price }, pricePerHour: price, fallback: false, reason: 'test' }),
  launched: (key: string, id: string, t0 = T0, price = 0.2, term = 1): LedgerEntry => ({ ...at(t0, term), type: 'instance.launched', key, id, launchedAt: t0, pricePerHour: price, reason: 'created' }),
  state: (key: string, state: 'ready' | 'draining' | 'terminating' | 'terminated' | 'failed', t0 = T0, term = 1): LedgerEntry =>
    ({ ...at(t0, term), type: 'instance.state', key, state, reason: state, ...(state === 'draining' ? { drainDeadline: t0 + 5 * MIN } : {}) }),
  price: (key: string, price: number, t0 = T0): LedgerEntry => ({ ...at(t0), type: 'instance.price', key, pricePerHour: price }),
  vanished: (key: string, t0 = T0): LedgerEntry => ({ ...at(t0), type: 'instance.vanished', key, reason: 'gone' }),
  adopted: (key: string, id: string, t0 = T0, price = 0.5): LedgerEntry => ({ ...at(t0), type: 'instance.adopted', key, id, offering: spotA, pricePerHour: price, launchedAt: t0 - HOUR, reason: 'found' }),
  decision: (id: string, seq: number, requestId: string | null = null, t0 = T0, term = 1): LedgerEntry =>
    ({ ...at(t0, term), type: 'decision', id, seq, kind: 'burst', requestId, answer: requestId === null ? null : { id: requestId, requested: 1, granted: 1, decision: 'granted', reason: 'ok', provider: 'aws', instances: [] }, reason: 'ok', line: 'ok' })
}

function must (s: LedgerState, e: LedgerEntry): LedgerState {
  const r = applyChecked(s, e)
  if (!r.ok) throw new Error(r.why)
  return r.state
}

t.test('parseEntry: entries off the network are validated', async (t) => {
  t.ok(parseEntry(JSON.parse(JSON.stringify(E.intent('d1-0-0')))).ok, 'a valid entry round-trips through JSON')
  const extra = parseEntry({ ...E.intent('d1-0-0'), fromTheFuture: 1 })
  t.ok(extra.ok, 'unknown fields of a newer leader are accepted')
  t.notOk(extra.ok && 'fromTheFuture' in extra.entry, '... and dropped')
  const bad: Array<[string, unknown]> = [
    ['not an object', 'hello'],
    ['unknown type', { ...at(T0), type: 'instance.teleported', key: 'k' }],
    ['a newer version', { ...E.intent('k'), v: 2 }],
    ['a prototype key', { ...E.intent('k'), key: '__proto__' }],
    ['a key with spaces', { ...E.intent('k'), key: 'a b' }],
    ['a negative price', { ...E.intent('k'), pricePerHour: -1 }],
    ['an infinite price', { ...E.intent('k'), pricePerHour: Infinity }],
    ['a fractional term', { ...E.intent('k'), term: 1.5 }],
    ['draining without a deadline', { ...at(T0), type: 'instance.state', key: 'k', state: 'draining', reason: 'x' }],
    ['a state the leader does not write', { ...at(T0), type: 'instance.state', key: 'k', state: 'provisioning', reason: 'x' }],
    ['a huge reason', { ...E.intent('k'), reason: 'x'.repeat(5000) }]
  ]
  for (const [name, input] of bad) {
    const r = parseEntry(input)
    t.notOk(r.ok, name)
    if (!r.ok) t.match(r.error, /^invalid ledger entry: /, `${name}: says why`)
  }
})

t.test('the instance state machine: every allowed and refused transition', async (t) => {
  // Reach each state, then try each instance.state entry.
  const reach: Record<RecordState, LedgerEntry[]> = {
    provisioning: [E.intent('k')],
    starting: [E.intent('k'), E.launched('k', 'i-1')],
    ready: [E.intent('k'), E.launched('k', 'i-1'), E.state('k', 'ready')],
    draining: [E.intent('k'), E.launched('k', 'i-1'), E.state('k', 'ready'), E.state('k', 'draining')],
    terminating: [E.intent('k'), E.launched('k', 'i-1'), E.state('k', 'terminating')],
    terminated: [E.intent('k'), E.launched('k', 'i-1'), E.state('k', 'terminating'), E.state('k', 'terminated')],
    failed: [E.intent('k'), E.state('k', 'failed')]
  }
  const allowed: Record<RecordState, string[]> = {
    provisioning: ['terminating', 'failed'],
    starting: ['ready', 'draining', 'terminating', 'failed'],
    ready: ['draining', 'terminating'],
    draining: ['terminating'],
    terminating: ['terminated'],
    terminated: ['terminating'],
    failed: ['terminating', 'terminated']
  }
  for (const from of Object.keys(reach) as RecordState[]) {
    const s = rebuild(reach[from])
    t.equal(getRecord(s, 'k')?.state, from, `reached ${from}`)
    for (const to of ['ready', 'draining', 'terminating', 'terminated', 'failed'] as const) {
      const r = applyChecked(s, E.state('k', to, T0 + MIN))
      t.equal(r.ok, allowed[from].includes(to), `${from} → ${to}: ${allowed[from].includes(to) ? 'allowed' : 'refused'}`)
      if (r.ok) t.equal(getRecord(r.state, 'k')?.state, to)
      else t.equal(r.state, s, 'a refused entry leaves the state as it was')
    }
  }
})

t.test('launched: key → id, once', async (t) => {
  let s = rebuild([E.intent('k')])
  t.equal(getRecord(s, 'k')?.state, 'provisioning')
  s = must(s, E.launched('k', 'i-1', T0 + MIN))
  t.match(getRecord(s, 'k'), { state: 'starting', id: 'i-1', launchedAt: T0 + MIN })
  t.ok(applyChecked(s, E.launched('k', 'i-1', T0 + 2 * MIN)).ok, 'the same news twice (launcher and reconciliation) is fine')
  t.notOk(applyChecked(s, E.launched('k', 'i-2')).ok, 'a key never maps to a second instance')
  t.notOk(applyChecked(emptyLedger(), E.launched('nope', 'i-1')).ok, 'no intent: refused (adopt instead)')

  // Given up on, yet it exists: it goes to terminating, billing again.
  let f = rebuild([E.intent('k'), E.state('k', 'failed', T0 + 10 * MIN)])
  t.equal(getRecord(f, 'k')?.endedAt, T0 + 10 * MIN, 'a failed launch with no instance bills nothing')
  f = must(f, E.launched('k', 'i-9', T0 + 11 * MIN))
  t.match(getRecord(f, 'k'), { state: 'terminating', id: 'i-9', endedAt: null })
  // Terminating before we knew the id: we learn it, and stay terminating.
  const g = rebuild([E.intent('k'), E.state('k', 'terminating'), E.launched('k', 'i-3')])
  t.match(getRecord(g, 'k'), { state: 'terminating', id: 'i-3' })
})

t.test('terms, duplicates and prototype-looking keys', async (t) => {
  const s = rebuild([E.decision('d5-0', 0, null, T0, 5)])
  t.equal(s.term, 5)
  const old = applyChecked(s, E.intent('k', T0, 0.2, 4))
  t.notOk(old.ok, 'an entry of an older term is refused')
  t.match(old, { why: 'term 4 is older than 5' })
  t.notOk(applyChecked(s, E.decision('d5-0', 3, null, T0, 5)).ok, 'a decision id twice is refused')
  const r = rebuild([E.decision('d1-0', 0, 'req-1'), E.decision('d1-1', 1, 'req-1')])
  t.equal(Object.keys(r.decisions).length, 1, 'a request answered twice is refused')
  t.equal(answerFor(r, 'req-1')?.granted, 1)
  t.equal(answerFor(r, 'toString'), null, 'no answer for an inherited name')
  t.equal(r.seq, 1, 'seq follows the decisions')
  const c = rebuild([E.intent('constructor'), E.intent('toString')])
  t.equal(Object.keys(c.instances).length, 2, 'keys that shadow Object.prototype are plain keys')
  t.equal(getRecord(emptyLedger(), 'hasOwnProperty'), undefined)
  t.notOk(applyChecked(c, E.intent('constructor')).ok, 'a key twice is refused')
})

t.test('queries: by state, projected and committed $/h', async (t) => {
  const s = rebuild([
    E.intent('p'), // provisioning 0.20
    E.intent('r'), E.launched('r', 'i-r'), E.state('r', 'ready'), // ready 0.20
    E.intent('d', T0, 0.3), E.launched('d', 'i-d', T0, 0.3), E.state('d', 'ready'), E.state('d', 'draining'), // draining 0.30
    E.intent('x', T0, 0.5), E.launched('x', 'i-x', T0, 0.5), E.state('x', 'terminating'), // terminating 0.50
    E.intent('g'), E.launched('g', 'i-g'), E.vanished('g', T0 + MIN), // gone
    E.intent('f'), E.state('f', 'failed') // failed before anything existed
  ])
  const b = byState(s)
  t.same(Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v.map((r) => r.key)])), {
    provisioning: ['p'], starting: [], ready: ['r'], draining: ['d'], terminating: ['x'], terminated: ['g'], failed: ['f']
  })
  t.equal(projectedPerHour(s), 0.7, 'pending + running + draining')
  t.equal(committedPerHour(s), 1.2, '... + terminating (still billing until confirmed)')
  t.same(JSON.parse(JSON.stringify(s)), s, 'the state is plain JSON (a Raft snapshot)')
})

t.test('capacity refusals are remembered for a while', async (t) => {
  const s = rebuild([E.intent('k'), { ...at(T0 + MIN), type: 'instance.state', key: 'k', state: 'failed', reason: 'ice', error: { code: 'insufficient_capacity', refused: ['aws/us-east-1/a/-/spot'] } }])
  t.same([...capacityRefused(s, T0 + 2 * MIN, 3 * MIN)], ['aws/us-east-1/a/-/spot'])
  t.same([...capacityRefused(s, T0 + 4 * MIN, 3 * MIN)], [], 'forgotten after the ttl')
  t.same([...capacityRefused(s, T0 + 4 * MIN, (p) => p === 'aws' ? 5 * MIN : 1)], ['aws/us-east-1/a/-/spot'], "a provider's own ttl (aws unavailable_for)")
  t.same([...capacityRefused(s, T0 + 2 * MIN, (p) => p === 'aws' ? MIN : 3 * MIN)], [], 'a shorter one forgets sooner')
})

t.test('spend: price over lifetime, clipped to UTC day and month', async (t) => {
  const day = Date.UTC(2026, 2, 15)
  const rows: Array<{ name: string, entries: LedgerEntry[], now: number, today: number, month: number, total: number }> = [
    { name: 'an intent that never launched costs nothing', entries: [E.intent('k', day + 10 * HOUR)], now: day + 12 * HOUR, today: 0, month: 0, total: 0 },
    { name: 'running 2 h at 0.50', entries: [E.intent('k', day + 10 * HOUR), E.launched('k', 'i', day + 10 * HOUR, 0.5)], now: day + 12 * HOUR, today: 1, month: 1, total: 1 },
    {
      name: 'terminated: billing stops',
      entries: [E.intent('k', day + 1 * HOUR), E.launched('k', 'i', day + 1 * HOUR, 1), E.state('k', 'terminating', day + 3 * HOUR), E.state('k', 'terminated', day + 4 * HOUR)],
      now: day + 20 * HOUR, today: 3, month: 3, total: 3
    },
    {
      name: 'a price change mid-life',
      entries: [E.intent('k', day), E.launched('k', 'i', day, 1), E.price('k', 0.5, day + 2 * HOUR)],
      now: day + 4 * HOUR, today: 3, month: 3, total: 3
    },
    {
      name: 'started yesterday: today counts since 00:00 UTC',
      entries: [E.intent('k', day - 2 * HOUR), E.launched('k', 'i', day - 2 * HOUR, 1)],
      now: day + HOUR, today: 1, month: 3, total: 3
    },
    {
      name: 'started last month: the month counts since the 1st',
      entries: [E.intent('k', Date.UTC(2026, 1, 28, 23)), E.launched('k', 'i', Date.UTC(2026, 1, 28, 23), 1)],
      now: Date.UTC(2026, 2, 1, 2), today: 2, month: 2, total: 3
    }
  ]
  for (const r of rows) {
    const s = spend(rebuild(r.entries), r.now)
    t.equal(Number(s.today.toFixed(9)), r.today, `${r.name}: today`)
    t.equal(Number(s.month.toFixed(9)), r.month, `${r.name}: month`)
    t.equal(Number(s.total.toFixed(9)), r.total, `${r.name}: total`)
  }
})

t.test('compaction forgets finished instances, not their spend', async (t) => {
  const may = Date.UTC(2026, 4, 10)
  const s = rebuild([
    E.intent('old', Date.UTC(2026, 2, 1)), E.launched('old', 'i-1', Date.UTC(2026, 2, 1), 1), E.vanished('old', Date.UTC(2026, 2, 1, 10)),
    E.decision('d1-0', 0, 'req', Date.UTC(2026, 2, 1)),
    E.intent('live', Date.UTC(2026, 3, 1)), E.launched('live', 'i-2', Date.UTC(2026, 3, 1), 0.01)
  ])
  const before = spend(s, may)
  const c = applyChecked(s, { ...at(may), type: 'ledger.compact', before: may })
  t.ok(c.ok)
  t.equal(c.state.compacted.before, Date.UTC(2026, 4, 1), 'clipped to the start of this month')
  t.same(Object.keys(c.state.instances), ['live'], 'the finished one is forgotten; the live one is kept')
  t.equal(answerFor(c.state, 'req'), null, 'old decisions go too')
  const after = spend(c.state, may)
  t.equal(after.total.toFixed(9), before.total.toFixed(9), 'total spend unchanged')
  t.equal(after.month.toFixed(9), before.month.toFixed(9), "this month's spend unchanged")
  t.notOk(applyChecked(c.state, { ...at(may), type: 'ledger.compact', before: may }).ok, 'compacting to the same point again is refused')
})
