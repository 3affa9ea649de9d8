/**
 * The leader's reaction to spot notices (daemon/leader/plan/notices.ts), on a
 * fake clock: an interruption is recorded, the instance drained until its
 * termination time and replaced at once, in the zone or region spot_recovery
 * says, away from the preempted zone; a rebalance keeps the instance until its
 * replacement is ready; one replacement per notice, also across leaders; the
 * budget holds (a replacement waits for the interrupted one to stop billing).
 */
import t from 'tap'
import type { Offering } from '../../providers/types.ts'
import { parseEntry, type IntentEntry } from '../../daemon/leader/ledger/entries.ts'
import { applyChecked } from '../../daemon/leader/ledger/ledger.ts'
import type { MemberObservation, ProviderPolicy } from '../../daemon/leader/plan/types.ts'
import { Harness } from './harness.ts'
import { MIN, T0, burstMember, offering, policy, provider } from './fixtures.ts'

const spot = (region: string, zone: string, price = 0.2, over: Partial<Offering> = {}): Offering =>
  offering('aws', 'aws', price, { region, zone, instanceType: 'c7a.large', spot: true, ...over })

function world (over: { budget?: number, recovery?: ProviderPolicy['spotRecovery'], dynamic?: boolean, prices?: Offering[] } = {}): Harness {
  const p = policy({
    burst: { costBudget: over.budget ?? 1 },
    service: { dynamicOndemandFallback: over.dynamic ?? false },
    providers: [provider('aws', 'aws', { maxInstances: 10, spot: true, spotRecovery: over.recovery ?? 'FAILOVER' })]
  })
  return new Harness(p, over.prices ?? [
    spot('us-east-1', 'us-east-1a'),
    spot('us-east-1', 'us-east-1b'),
    spot('us-west-2', 'us-west-2a'),
    offering('aws', 'aws', 0.6, { region: 'us-east-1', zone: 'us-east-1a', instanceType: 'c7a.large', spot: false })
  ])
}

/** One burst instance, launched and ready as member `peer-<key>`; returns its key. */
function oneReady (h: Harness, now: number): string {
  const key = h.decide(now, { burst: [{ id: 'r1', count: 1 }] }).answers[0]!.instances[0]!
  h.launched(key, 'i-1', now)
  h.decide(now + 1000, { members: [member(h, key)] })
  if (h.state(key) !== 'ready') throw new Error(`${key} is ${h.state(key)}`)
  return key
}

function member (h: Harness, key: string, over: Partial<MemberObservation> = {}): MemberObservation {
  const r = h.rec(key)
  return burstMember(key, r.id ?? 'none', 'aws', { spot: r.offering.spot, region: r.offering.region, ...(r.offering.zone !== undefined ? { zone: r.offering.zone } : {}), ...over })
}

const intents = (entries: Array<{ type: string }>): IntentEntry[] => entries.filter((e): e is IntentEntry => e.type === 'instance.intent')

t.test('an interruption: recorded, drained until it goes, replaced at once in another zone of the region (FAILOVER)', async (t) => {
  const h = world()
  const key = oneReady(h, T0)
  t.equal(h.rec(key).offering.zone, 'us-east-1a')
  const now = T0 + 10 * MIN
  const at = now + 2 * MIN
  // Streams in flight on it (an idle one would be terminated at once).
  const warned = member(h, key, { draining: true, notice: { kind: 'interruption', at }, replica: { ready: true, models: ['m'], slots: 4, inflight: 2, queued: 0, qps: 1 } })
  const r = h.decide(now, { members: [warned] })
  t.same(r.entries.map((e) => e.type), ['instance.notice', 'instance.state', 'instance.intent', 'decision'], 'notice, drain, replacement, the tick')
  t.same(h.rec(key).notice, { kind: 'interruption', at, recordedAt: now, replace: true }, 'the ledger remembers it (a new leader knows)')
  t.equal(h.state(key), 'draining')
  t.equal(h.rec(key).drainDeadline, at, 'drained until the termination time')
  const [intent] = intents(r.entries)
  t.equal(intent?.replaces, key, 'the replacement names what it replaces')
  t.equal(intent?.offering.zone, 'us-east-1b', 'another zone of the same region first')
  t.match(intent?.reason, /^spot interruption of .* at .*: replacement$/, 'the reason names the notice')
  t.same(r.decisions, [{ kind: 'tick', outcome: 'acted', reason: 'spot_notice' }], 'counted under its own reason')
  t.same(r.actions.map((a) => a.op).sort(), ['drain', 'launch'], 'tell the member to drain (it already does), launch the replacement')
  t.match(r.lines[0], /notice: spot interruption of/)

  // The member keeps announcing it: nothing more, ever.
  for (let i = 1; i <= 3; i++) {
    const again = h.decide(now + i * 5000, { members: [warned] })
    t.same(intents(again.entries), [], `tick ${i}: no second replacement`)
  }
  // So does a new leader, from the committed ledger alone.
  h.newLeader()
  t.same(intents(h.decide(now + 30_000, { members: [warned] }).entries), [], 'a new leader launches no second replacement')
})

t.test('EAGER_NEXT_REGION: the replacement goes to another region first', async (t) => {
  const h = world({ recovery: 'EAGER_NEXT_REGION' })
  const key = oneReady(h, T0)
  const r = h.decide(T0 + MIN, { members: [member(h, key, { draining: true, notice: { kind: 'interruption', at: T0 + 3 * MIN } })] })
  t.equal(intents(r.entries)[0]?.offering.region, 'us-west-2')
})

t.test('preempted zones are avoided for a while, then used again', async (t) => {
  const h = world()
  const key = oneReady(h, T0)
  h.decide(T0 + MIN, { members: [member(h, key, { draining: true, notice: { kind: 'interruption', at: T0 + 3 * MIN } })] })
  const repl = intents(h.log)[1]!.key
  // The interrupted one is gone; zone a holds nothing, zone b the replacement.
  const next = h.decide(T0 + 5 * MIN, { burst: [{ id: 'r2', count: 1 }], listings: [{ provider: 'aws', at: T0 + 5 * MIN, instances: [] }] })
  t.equal(h.state(key), 'terminated', 'gone from the list: vanished')
  t.not(intents(next.entries)[0]?.offering.zone, 'us-east-1a', 'zone a saw a preemption: not chosen although it is the emptiest')
  t.ok(repl.length > 0)
  const later = h.decide(T0 + 40 * MIN, { burst: [{ id: 'r3', count: 1 }] })
  t.equal(intents(later.entries)[0]?.offering.zone, 'us-east-1a', 'half an hour on, the emptiest zone again')
})

t.test('the budget holds: a replacement waits until the interrupted instance stops billing', async (t) => {
  const h = world({ budget: 0.2 })
  const key = oneReady(h, T0)
  const at = T0 + 3 * MIN
  const warned = member(h, key, { draining: true, notice: { kind: 'interruption', at } })
  const first = h.decide(T0 + MIN, { members: [warned] })
  t.same(intents(first.entries), [], 'no room beside the interrupted instance, which still bills')
  t.match(first.lines[0], /no replacement for .* yet .*cost_budget/, 'the line says why')
  t.ok(first.budget.committedPerHour <= 0.2)
  // EC2 takes it; the provider's list no longer shows it.
  const after = h.decide(at + 10_000, { listings: [{ provider: 'aws', at: at + 10_000, instances: [] }] })
  t.equal(h.state(key), 'terminated')
  const [intent] = intents(after.entries)
  t.equal(intent?.replaces, key, 'replaced as soon as the money is free')
  t.ok(after.budget.committedPerHour <= 0.2)
})

t.test('a rebalance: the instance keeps serving until its replacement is ready, then drains', async (t) => {
  const h = world()
  const key = oneReady(h, T0)
  const warned = member(h, key, { notice: { kind: 'rebalance', at: T0 + MIN } })
  const r = h.decide(T0 + MIN, { members: [warned] })
  const repl = intents(r.entries)[0]
  t.equal(repl?.replaces, key)
  t.equal(h.state(key), 'ready', 'still serving')
  t.match(repl?.reason, /^rebalance recommendation for /)
  h.launched(repl!.key, 'i-2', T0 + 2 * MIN)
  h.decide(T0 + 2 * MIN, { members: [warned] })
  t.equal(h.state(key), 'ready', 'its replacement is not ready yet: it stays')
  const done = h.decide(T0 + 4 * MIN, { members: [warned, member(h, repl!.key)] })
  t.equal(h.state(repl!.key), 'ready')
  t.equal(h.state(key), 'draining', 'drained once the replacement is ready')
  t.same(intents(done.entries), [])
  // The interruption that may follow changes nothing more.
  const later = h.decide(T0 + 5 * MIN, { members: [member(h, key, { draining: true, notice: { kind: 'interruption', at: T0 + 7 * MIN } }), member(h, repl!.key)] })
  t.same(intents(later.entries), [], 'no second replacement')
  t.equal(h.rec(key).notice?.kind, 'interruption', 'the interruption is recorded (its zone is avoided)')
})

t.test('spot gone everywhere: the replacement is an on-demand fallback (dynamic_ondemand_fallback)', async (t) => {
  const h = world({ dynamic: true })
  const key = oneReady(h, T0)
  h.prices = h.prices.map((o) => o.spot ? { ...o, available: false } : o)
  const r = h.decide(T0 + MIN, { members: [member(h, key, { draining: true, notice: { kind: 'interruption', at: T0 + 3 * MIN } })] })
  const [intent] = intents(r.entries)
  t.equal(intent?.offering.spot, false)
  t.equal(intent?.fallback, true, 'marked fallback: the back-to-spot step returns it to spot later')
  t.match(intent?.reason, /on-demand fallback: spot unavailable/)
})

t.test('an instance already draining for another reason is not replaced', async (t) => {
  const h = world()
  const key = oneReady(h, T0)
  h.decide(T0 + MIN, { terminate: [{ id: 't1', count: 1 }], members: [member(h, key)] })
  t.equal(h.state(key), 'draining')
  const r = h.decide(T0 + 2 * MIN, { members: [member(h, key, { draining: true, notice: { kind: 'interruption', at: T0 + 4 * MIN } })] })
  t.same(intents(r.entries), [], 'it was going anyway')
  t.equal(h.rec(key).notice?.replace, false)
})

t.test('the autoscaler counts a replacement and the instance it replaces as one', async (t) => {
  const h = new Harness(policy({
    burst: { costBudget: 2, mode: 'auto', minCloudInstances: 1, queueDepthThreshold: 1000 },
    providers: [provider('aws', 'aws', { maxInstances: 10, spot: true })]
  }), [spot('us-east-1', 'us-east-1a'), spot('us-east-1', 'us-east-1b')])
  const first = h.decide(T0)
  const key = intents(first.entries)[0]!.key
  h.launched(key, 'i-1', T0)
  h.decide(T0 + 1000, { members: [member(h, key)] })
  const r = h.decide(T0 + 2000, { members: [member(h, key, { notice: { kind: 'rebalance', at: T0 + 2000 } })] })
  t.equal(intents(r.entries).length, 1, 'one replacement, nothing more for min_cloud_instances')
  const next = h.decide(T0 + 3000, { members: [member(h, key, { notice: { kind: 'rebalance', at: T0 + 2000 } })] })
  t.same(intents(next.entries), [], 'the pair is one instance to the autoscaler')
})

t.test('the ledger takes a notice once per kind, an interruption after a rebalance, none on a finished instance', async (t) => {
  const h = world()
  const key = oneReady(h, T0)
  const notice = (kind: 'rebalance' | 'interruption', at: number): Parameters<typeof applyChecked>[1] =>
    ({ v: 1, term: 1, at, type: 'instance.notice', key, kind, noticeAt: at, replace: true, reason: 'test' })
  let s = applyChecked(h.ledger, notice('rebalance', T0 + MIN))
  t.ok(s.ok)
  t.match(applyChecked(s.state, notice('rebalance', T0 + 2 * MIN)), { ok: false, why: /already has a rebalance notice/ })
  s = applyChecked(s.state, notice('interruption', T0 + 2 * MIN))
  t.ok(s.ok, 'an interruption may follow a rebalance')
  t.match(applyChecked(s.state, notice('interruption', T0 + 3 * MIN)), { ok: false, why: /already has an interruption notice/ })
  t.match(applyChecked(s.state, notice('rebalance', T0 + 3 * MIN)), { ok: false, why: /already has an interruption notice/ })
  const gone = applyChecked(s.state, { v: 1, term: 1, at: T0 + 4 * MIN, type: 'instance.vanished', key, reason: 'test' })
  t.match(applyChecked(gone.state, notice('interruption', T0 + 5 * MIN)), { ok: false, why: /is terminated/ })
  t.match(parseEntry({ v: 1, term: 1, at: 1, type: 'instance.notice', key, kind: 'eviction', noticeAt: 1, replace: true, reason: '' }), { ok: false, error: /kind/ })
})
