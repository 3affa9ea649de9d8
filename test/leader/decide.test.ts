import t from 'tap'
import { decide } from '../../daemon/leader/plan/decide.ts'
import { emptyLedger } from '../../daemon/leader/ledger/ledger.ts'
import { launchFailedOutcome, terminateOutcome } from '../../daemon/leader/plan/outcomes.ts'
import { InsufficientCapacityError, NotFoundError, type Instance } from '../../providers/types.ts'
import type { LaunchAction } from '../../daemon/leader/plan/types.ts'
import { Harness } from './harness.ts'
import { HOUR, MIN, T0, burstMember, hybrid, obs, offering, policy, provider } from './fixtures.ts'

const ws = (over: Parameters<typeof policy>[0] = {}): Harness =>
  new Harness(policy({ burst: { costBudget: 1 }, ...over }), [offering('workstation', 'local', 0.3)])

t.test('manual burst: granted, cut, refused — the answer of `meshd burst --json`', async (t) => {
  const rows: Array<{ name: string, h: () => Harness, req: { id: string, count: number, provider?: string, spot?: boolean }, decision: string, granted: number, reason: string | RegExp, provider: string | null, kind: string }> = [
    { name: 'granted', h: () => ws(), req: { id: 'r', count: 2 }, decision: 'granted', granted: 2, reason: 'within limits: 0.60/h of cost_budget 1.00/h, 2 of max_cloud_instances 20', provider: 'workstation', kind: 'within_limits' },
    { name: 'cut by the budget', h: () => ws(), req: { id: 'r', count: 5 }, decision: 'cut', granted: 3, reason: 'cost_budget 1.00/h allows 3 at 0.30/h', provider: 'workstation', kind: 'cost_budget' },
    { name: 'cut by max_cloud_instances', h: () => ws({ burst: { costBudget: 10, maxCloudInstances: 2 } }), req: { id: 'r', count: 5 }, decision: 'cut', granted: 2, reason: 'max_cloud_instances 2 allows 2', provider: 'workstation', kind: 'max_cloud_instances' },
    { name: "cut by the provider's max_instances", h: () => ws({ burst: { costBudget: 10 } }), req: { id: 'r', count: 5 }, decision: 'cut', granted: 4, reason: 'workstation max_instances 4 allows 4', provider: 'workstation', kind: 'max_instances' },
    { name: 'refused: budget', h: () => ws({ burst: { costBudget: 0.2 } }), req: { id: 'r', count: 1 }, decision: 'refused', granted: 0, reason: 'cost_budget 0.20/h allows 0 at 0.30/h', provider: null, kind: 'cost_budget' },
    { name: 'refused: max_cloud_instances 0', h: () => ws({ burst: { maxCloudInstances: 0 } }), req: { id: 'r', count: 1 }, decision: 'refused', granted: 0, reason: 'max_cloud_instances 0 allows 0', provider: null, kind: 'max_cloud_instances' },
    { name: 'refused: no such provider', h: () => ws(), req: { id: 'r', count: 1, provider: 'gcp' }, decision: 'refused', granted: 0, reason: 'no provider named gcp (have workstation)', provider: null, kind: 'invalid_request' },
    { name: 'refused: no provider at all', h: () => new Harness(policy({ providers: [] }), []), req: { id: 'r', count: 1 }, decision: 'refused', granted: 0, reason: "no provider configured (the leader's config has no `providers:`)", provider: null, kind: 'no_offering' },
    { name: 'refused: --spot and no spot', h: () => ws(), req: { id: 'r', count: 1, spot: true }, decision: 'refused', granted: 0, reason: 'no spot offering available', provider: null, kind: 'no_offering' },
    { name: 'refused: a bad count', h: () => ws(), req: { id: 'r', count: 0 }, decision: 'refused', granted: 0, reason: /^count must be a whole number/, provider: null, kind: 'invalid_request' }
  ]
  for (const r of rows) {
    const h = r.h()
    const out = h.decide(T0, { burst: [r.req] })
    const a = out.answers[0]!
    t.same(Object.keys(a).sort(), ['decision', 'granted', 'id', 'instances', 'provider', 'reason', 'requested'], `${r.name}: the answer's fields`)
    t.equal(a.decision, r.decision, `${r.name}: decision`)
    t.equal(a.granted, r.granted, `${r.name}: granted`)
    t.equal(a.requested, r.req.count, `${r.name}: requested`)
    if (typeof r.reason === 'string') t.equal(a.reason, r.reason, `${r.name}: reason`)
    else t.match(a.reason, r.reason, `${r.name}: reason`)
    t.equal(a.provider, r.provider, `${r.name}: provider`)
    t.equal(a.instances.length, r.granted, `${r.name}: one key per instance`)
    t.equal(out.actions.filter((x) => x.op === 'launch').length, r.granted, `${r.name}: one launch per instance`)
    t.equal(out.lines.length, 1, `${r.name}: one log line`)
    t.match(out.lines[0], new RegExp(`^burst d1-\\d+ request r: requested ${r.req.count}.* → ${r.decision}`), `${r.name}: the line says what was asked and decided`)
    t.ok(h.ledger.decisions[out.ledger.requests.r!], `${r.name}: the decision is recorded, refusals too`)
    t.same(out.decisions, [{ kind: 'burst', outcome: r.decision, reason: r.kind }], `${r.name}: counted as ${r.decision} by ${r.kind} (a fixed set, for the metric's label)`)
  }
})

t.test('intents first: every launch has its intent among the entries, keys from the decision id', async (t) => {
  const h = ws()
  const r = h.decide(T0, { burst: [{ id: 'req-a', count: 2 }] })
  t.same(r.entries.map((e) => e.type), ['decision', 'instance.intent', 'instance.intent'])
  t.same(r.answers[0]!.instances, ['d1-1-0', 'd1-1-1'], 'keys: decision id + ordinal')
  for (const a of r.actions) {
    t.equal(a.op, 'launch')
    t.ok(r.entries.some((e) => e.type === 'instance.intent' && e.key === a.key), `${a.key} has an intent`)
    t.ok(a.reason.length > 0, 'every action carries its reason')
  }
  t.equal(h.rec('d1-1-0').state, 'provisioning')
  t.equal(r.budget.projectedPerHour, 0.6, 'the budget counts the pending launches at once')
})

t.test('a request id answered once is answered the same again, changing nothing', async (t) => {
  const h = ws()
  const first = h.decide(T0, { burst: [{ id: 'same', count: 2 }] })
  const again = h.decide(T0 + 1000, { burst: [{ id: 'same', count: 2 }, { id: 'same', count: 2 }] })
  t.same(again.answers, [first.answers[0], first.answers[0]], 'the recorded answer, twice')
  t.equal(again.entries.filter((e) => e.type === 'instance.intent').length, 0, 'no new intents')
  h.newLeader()
  t.same(h.decide(T0 + 2000, { burst: [{ id: 'same', count: 2 }] }).answers[0], first.answers[0], 'also after a leader change')
})

t.test('one decision in flight: deciding on a ledger without the last decision waits', async (t) => {
  const h = ws()
  const r = decide({ observations: obs({ burst: [{ id: 'a', count: 2 }] }), ledger: emptyLedger(), policy: h.policy, prices: h.prices, now: T0 })
  const again = decide({ observations: obs({ burst: [{ id: 'b', count: 2 }] }), ledger: emptyLedger(), policy: h.policy, prices: h.prices, now: T0 + 1000, memory: r.memory })
  t.match(again.waiting, /^waiting for d1-1 to commit/)
  t.same(again.entries, [])
  t.same(again.answers, [], 'the request is not answered; the shell passes it again')
  const later = decide({ observations: obs({ burst: [{ id: 'b', count: 2 }] }), ledger: r.ledger, policy: h.policy, prices: h.prices, now: T0 + 2000, memory: again.memory })
  t.equal(later.waiting, null, 'once the ledger shows it, deciding goes on')
  t.equal(later.answers[0]!.granted, 1, 'and sees the first decision\'s spend (0.60 of 1.00)')
})

t.test('lifecycle: launch → ready → ttl → drain → drained → terminate → gone', async (t) => {
  const h = ws({ burst: { ttlMs: 2 * HOUR, idleTimeoutMs: 0 } })
  h.decide(T0, { burst: [{ id: 'r', count: 1 }] })
  const key = 'd1-1-0'
  h.launched(key, 'i-1', T0 + MIN)
  t.equal(h.state(key), 'starting')
  const m = burstMember(key, 'i-1', 'workstation')
  let r = h.decide(T0 + 2 * MIN, { members: [m] })
  t.equal(h.state(key), 'ready', 'its member joined and is ready')
  t.match(r.lines[0], /ready d1-1-0/)
  r = h.decide(T0 + MIN + 2 * HOUR, { members: [{ ...m, replica: { ...m.replica!, inflight: 2 } }] })
  t.equal(h.state(key), 'draining', 'ttl reached: drain')
  t.match(r.actions, [{ op: 'drain', key, member: m.id, reason: 'ttl 2h reached' }])
  r = h.decide(T0 + MIN + 2 * HOUR + 10_000, { members: [{ ...m, draining: true, replica: { ...m.replica!, inflight: 1 } }] })
  t.equal(h.state(key), 'draining', 'still busy: keep draining')
  t.same(r.actions, [])
  r = h.decide(T0 + MIN + 2 * HOUR + 20_000, { members: [{ ...m, draining: true }] })
  t.equal(h.state(key), 'terminating', 'nothing in flight: terminate')
  t.match(r.actions, [{ op: 'terminate', key, provider: 'workstation', id: 'i-1', reason: 'drained: nothing in flight' }])
  h.commit(terminateOutcome(key, new NotFoundError('workstation', 'i-1'), h.term, T0 + 3 * HOUR)!)
  t.equal(h.state(key), 'terminated', 'a delete that finds nothing confirms it')
  t.equal(terminateOutcome(key, null, 1, T0), null, 'a delete that was accepted records nothing yet: list() confirms it')
})

t.test('lifecycle with an explicit clock: timeouts, idle, dead and departed members', async (t) => {
  const launchOne = (over: Parameters<typeof policy>[0] = {}): Harness => {
    const h = ws(over)
    h.decide(T0, { burst: [{ id: 'r', count: 1 }] })
    return h
  }
  const key = 'd1-1-0'
  const b = policy().burst

  let h = launchOne()
  let r = h.decide(T0 + b.launchTimeoutMs - 1)
  t.equal(h.state(key), 'provisioning', 'just before the launch timeout: still provisioning')
  r = h.decide(T0 + b.launchTimeoutMs)
  t.equal(h.state(key), 'failed', 'no instance by the launch timeout: failed')
  t.same(r.actions, [], 'nothing to terminate: nothing exists')

  h = launchOne()
  h.launched(key, 'i-1', T0 + MIN)
  r = h.decide(T0 + b.launchTimeoutMs)
  t.equal(h.state(key), 'terminating', 'launched but never ready: failed, then terminated')
  t.same(h.log.filter((e) => e.type === 'instance.state').slice(-2).map((e) => e.type === 'instance.state' && e.state), ['failed', 'terminating'])
  t.match(r.actions, [{ op: 'terminate', id: 'i-1' }])

  h = launchOne({ burst: { costBudget: 1, idleTimeoutMs: 30 * MIN } })
  h.launched(key, 'i-1', T0 + MIN)
  const m = burstMember(key, 'i-1', 'workstation')
  h.decide(T0 + 2 * MIN, { members: [m] })
  h.decide(T0 + 10 * MIN, { members: [{ ...m, replica: { ...m.replica!, qps: 1 } }] })
  h.decide(T0 + 39 * MIN, { members: [m] })
  t.equal(h.state(key), 'ready', 'idle 29 min: kept')
  r = h.decide(T0 + 40 * MIN, { members: [m] })
  t.equal(h.state(key), 'draining', 'idle 30 min: drained')
  t.match(r.actions[0]?.reason, /^idle for 30m/)

  h = launchOne()
  h.launched(key, 'i-1', T0 + MIN)
  h.decide(T0 + 2 * MIN, { members: [m] })
  h.decide(T0 + 3 * MIN, { members: [{ ...m, state: 'dead', lastSeenAt: T0 + 2 * MIN }] })
  t.equal(h.state(key), 'ready', 'dead for 1 min: within the grace period')
  r = h.decide(T0 + 4 * MIN, { members: [{ ...m, state: 'dead', lastSeenAt: T0 + 2 * MIN }] })
  t.equal(h.state(key), 'terminating', 'dead for 2 min: terminated (no orphaned spend)')
  t.match(r.actions[0]?.reason, /member dead for 2m \(grace 2m\)/)

  h = launchOne()
  h.launched(key, 'i-1', T0 + MIN)
  h.decide(T0 + 2 * MIN, { members: [m] })
  h.decide(T0 + 3 * MIN, { members: [] })
  t.equal(h.state(key), 'ready', 'absent for 1 min: within the grace period')
  h.decide(T0 + 5 * MIN, { members: [] })
  t.equal(h.state(key), 'terminating', 'absent for 3 min: terminated')

  h = launchOne()
  h.launched(key, 'i-1', T0 + MIN)
  h.decide(T0 + 2 * MIN, { members: [m] })
  h.decide(T0 + 3 * MIN, { members: [{ ...m, state: 'left' }] })
  t.equal(h.state(key), 'terminating', 'it left (retired itself): terminate at once, the backstop')

  h = launchOne({ burst: { costBudget: 1, drainTimeoutMs: 5 * MIN } })
  h.launched(key, 'i-1', T0 + MIN)
  h.decide(T0 + 2 * MIN, { members: [m] })
  h.decide(T0 + 3 * MIN, { members: [{ ...m, replica: { ...m.replica!, inflight: 3 } }], terminate: [{ id: 'x', count: 1 }] })
  t.equal(h.state(key), 'draining')
  r = h.decide(T0 + 8 * MIN, { members: [{ ...m, draining: true, replica: { ...m.replica!, inflight: 3 } }] })
  t.equal(h.state(key), 'terminating', 'the drain deadline passed')
  t.match(r.actions[0]?.reason, 'drain deadline passed with 3 in flight')
})

t.test('manual terminate: least useful first, drained before terminated', async (t) => {
  const h = new Harness(policy({ burst: { costBudget: 10 }, providers: [provider('workstation', 'local', { maxInstances: 4 }), provider('aws', 'aws', { spot: false })] }),
    [offering('workstation', 'local', 0.3), offering('aws', 'aws', 0.9)])
  h.decide(T0, { burst: [{ id: 'a', count: 2, provider: 'workstation' }] }) // d1-1-0, d1-1-1
  h.decide(T0 + MIN, { burst: [{ id: 'b', count: 1, provider: 'aws' }] }) // d1-3-0 (0.90)
  h.decide(T0 + 2 * MIN, { burst: [{ id: 'c', count: 1, provider: 'workstation' }] }) // d1-5-0, never launched
  h.launched('d1-1-0', 'i-a', T0 + 3 * MIN)
  h.launched('d1-1-1', 'i-b', T0 + 3 * MIN)
  h.launched('d1-3-0', 'i-c', T0 + 3 * MIN)
  const busy = burstMember('d1-1-0', 'i-a', 'workstation', { replica: { ready: true, models: ['m'], slots: 4, inflight: 2, queued: 0, qps: 1 } })
  const idle = burstMember('d1-1-1', 'i-b', 'workstation')
  const dear = burstMember('d1-3-0', 'i-c', 'aws')
  const members = [busy, idle, dear]
  h.decide(T0 + 4 * MIN, { members })
  const r = h.decide(T0 + 5 * MIN, { members, terminate: [{ id: 't', count: 3 }] })
  const a = r.answers[0]!
  t.equal(a.decision, 'granted')
  t.same(a.instances, ['d1-5-0', 'd1-3-0', 'd1-1-1'], 'not serving yet, then idle and dearest, then idle')
  t.equal(a.reason, 'least useful first: d1-5-0 (not serving yet, 0.30/h), d1-3-0 (idle, 0.90/h), d1-1-1 (idle, 0.30/h)')
  t.same(r.actions.map((x) => [x.op, x.key]), [['terminate', 'd1-5-0'], ['drain', 'd1-3-0'], ['drain', 'd1-1-1']], 'the pending one is terminated at once, the serving ones drained')
  t.match(r.lines.find((l) => l.startsWith('terminate')), /^terminate d1-\d+ request t: --count 3 → granted 3: .*; terminate d1-5-0, drain d1-3-0, drain d1-1-1$/)
  t.match(r.decisions.find((d) => d.kind === 'terminate'), { outcome: 'granted', reason: 'requested' }, 'counted: granted as asked')
  const all = h.decide(T0 + 6 * MIN, { members, terminate: [{ id: 'u', all: true }] })
  t.match(all.answers[0], { requested: 1, granted: 1, decision: 'granted', instances: ['d1-1-0'] }, '--all: what is left (draining ones are already going)')
  const none = h.decide(T0 + 7 * MIN, { members, terminate: [{ id: 'v', count: 2 }] })
  t.match(none.answers[0], { decision: 'refused', reason: 'no burst instances live' })
  t.match(none.decisions.find((d) => d.kind === 'terminate'), { outcome: 'refused', reason: 'nothing_to_terminate' }, 'counted: nothing to terminate')
  const bad = h.decide(T0 + 8 * MIN, { members, terminate: [{ id: 'w', count: 1, provider: 'gcp' }] })
  t.match(bad.decisions.find((d) => d.kind === 'terminate'), { outcome: 'refused', reason: 'invalid_request' }, 'counted: an unknown provider is the request\'s fault')
})

t.test('reconciliation: adopt, recover a lost launch, vanish, reopen, duplicate', async (t) => {
  const h = ws({ burst: { costBudget: 10 } })
  h.decide(T0, { burst: [{ id: 'r', count: 3 }] }) // d1-1-0 .. d1-1-2
  h.launched('d1-1-1', 'i-1', T0 + MIN)
  h.launched('d1-1-2', 'i-2', T0 + MIN)
  const inst = (id: string, key: string, over: Partial<Instance> = {}): Instance => ({ id, key, provider: 'workstation', region: 'local', spot: false, state: 'running', launchedAt: T0 + MIN, pricePerHour: 0.3, ...over })
  const listing = { provider: 'workstation', at: T0 + 5 * MIN, instances: [
    inst('i-0', 'd1-1-0'), // launched, but the launcher's entry was lost
    inst('i-1', 'd1-1-1'),
    // i-2 is gone: reclaimed or deleted by hand
    inst('i-9', 'manual-box'), // ours by tag, unknown to the ledger
    inst('i-x', 'd1-1-1'), // a second instance under a key that already has one
    inst('i-t', 'whatever', { state: 'terminated' }) // terminated ones are ignored
  ] }
  const r = h.decide(T0 + 5 * MIN, { listings: [listing] })
  t.match(h.rec('d1-1-0'), { state: 'starting', id: 'i-0' }, 'the lost launch is recorded from the list')
  t.match(h.rec('d1-1-2'), { state: 'terminated', reason: /i-2 gone from workstation's list/ }, 'vanished')
  t.match(h.rec('manual-box'), { state: 'starting', origin: 'adopted', id: 'i-9', pricePerHour: 0.3 }, 'adopted, and charged from now on')
  t.match(r.actions, [{ op: 'terminate', id: 'i-x', reason: /second instance/ }], 'the duplicate is terminated')
  t.match(r.lines[0], /^tick d1-\d+: .*adopt manual-box/)

  // A listing taken right after a launch may not show it yet: no vanishing within the grace period.
  const g = ws()
  g.decide(T0, { burst: [{ id: 'r', count: 1 }] })
  g.launched('d1-1-0', 'i-1', T0 + MIN)
  g.decide(T0 + 2 * MIN, { listings: [{ provider: 'workstation', at: T0 + 2 * MIN, instances: [] }] })
  t.equal(g.state('d1-1-0'), 'starting', '1 min after launch, absent from the list: not yet vanished')

  // Recorded gone, yet listed: back to terminating.
  const o = ws()
  o.decide(T0, { burst: [{ id: 'r', count: 1 }] })
  o.launched('d1-1-0', 'i-1', T0 + MIN)
  o.decide(T0 + 3 * MIN, { listings: [{ provider: 'workstation', at: T0 + 3 * MIN, instances: [] }] })
  t.equal(o.state('d1-1-0'), 'terminated')
  const back = o.decide(T0 + 4 * MIN, { listings: [{ provider: 'workstation', at: T0 + 4 * MIN, instances: [inst('i-1', 'd1-1-0')] }] })
  t.equal(o.state('d1-1-0'), 'terminating', 'it bills, so it goes')
  t.match(back.actions, [{ op: 'terminate', id: 'i-1' }])
})

t.test('the budget: prices rise, the dearest are shed at once; an adopted orphan is shed if it does not fit', async (t) => {
  const { policy: p, prices } = hybrid({ burst: { costBudget: 1 } })
  const h = new Harness(p, prices)
  h.decide(T0, { burst: [{ id: 'r', count: 5 }] }) // hetzner ×2 (0), aws spot ×3 (0.20)
  t.equal(h.decide(T0 + 1).budget.projectedPerHour, 0.6)
  h.prices = prices.map((o) => (o.spot ? { ...o, pricePerHour: 0.45 } : o))
  const r = h.decide(T0 + MIN)
  t.equal(r.budget.projectedPerHour, 0.9, 'three at 0.45 = 1.35 > 1.00: one shed, 0.90 left')
  t.equal(r.entries.filter((e) => e.type === 'instance.price').length, 3, 're-priced')
  t.equal(r.actions.filter((a) => a.op === 'terminate').length, 1)
  t.match(r.lines[0], /cost_budget 1.00\/h exceeded by live burst capacity at 1.35\/h: shed 1, most expensive first, to 0.90\/h/)
  t.same(r.decisions, [{ kind: 'tick', outcome: 'acted', reason: 'cost_budget' }], 'the tick that shed is counted under cost_budget, not as routine upkeep')
  const orphan: Instance = { id: 'i-o', key: 'someone-else', provider: 'aws', region: 'us-east-1', zone: 'us-east-1a', instanceType: 'c7a.4xlarge', spot: true, state: 'running', launchedAt: T0, pricePerHour: 0.45 }
  const s = h.decide(T0 + 2 * MIN, { listings: [{ provider: 'aws', at: T0 + 2 * MIN, instances: [orphan] }] })
  t.ok(s.budget.projectedPerHour <= 1, `after adopting it, still within the budget (${s.budget.projectedPerHour})`)
})

t.test('a new leader resumes: re-issues unconfirmed launches and terminates, never new keys for old intents', async (t) => {
  const h = ws()
  h.decide(T0, { burst: [{ id: 'r', count: 2 }] })
  h.launched('d1-1-0', 'i-0', T0 + MIN)
  h.decide(T0 + 2 * MIN, { terminate: [{ id: 't', count: 1 }] }) // the starting one has no member: terminated at once
  const terminating = Object.values(h.ledger.instances).filter((r) => r.state === 'terminating').map((r) => r.key)
  t.equal(terminating.length, 1)
  h.newLeader()
  const r = h.decide(T0 + 3 * MIN)
  const ops = r.actions.map((a) => `${a.op} ${a.key}`).sort()
  const pending = Object.values(h.ledger.instances).filter((x) => x.state === 'provisioning').map((x) => `launch ${x.key}`)
  t.same(ops, [...pending, `terminate ${terminating[0]!}`].sort(), 'launch again what has no instance yet, terminate again what is not confirmed gone')
  t.same(r.entries.filter((e) => e.type === 'instance.intent'), [], 'no new intents: the same keys, so the provider returns the same instances')
  t.equal(h.decide(T0 + 3 * MIN + 1000).actions.length, 0, 'not again until actionRetryMs')
  t.equal(h.decide(T0 + 4 * MIN).actions.length, ops.length, 'again after actionRetryMs')
})

t.test('launch failures: capacity refusals are skipped for a while; the launch fails', async (t) => {
  const { policy: p, prices } = hybrid({ burst: { costBudget: 10 } })
  const h = new Harness(p, prices)
  const r = h.decide(T0, { burst: [{ id: 'r', count: 1, spot: true }] })
  const a = r.actions[0] as LaunchAction
  t.equal(a.offering.zone, 'us-east-1a')
  t.same(a.fallbacks.map((o) => o.zone), ['us-east-1b'], 'the other zone at the same price is a fallback')
  h.commit(launchFailedOutcome(a.key, new InsufficientCapacityError('aws', 'no spot'), [a.offering, ...a.fallbacks], h.term, T0 + 1000)!)
  t.match(h.rec(a.key), { state: 'failed', endedAt: T0 + 1000 })
  const again = h.decide(T0 + MIN, { burst: [{ id: 'r2', count: 1, spot: true }] })
  t.match(again.answers[0], { decision: 'refused', reason: /^no spot offering available \(unavailable: aws us-east-1\/us-east-1a/ }, 'both zones refused recently')
  const later = h.decide(T0 + 4 * MIN, { burst: [{ id: 'r3', count: 1, spot: true }] })
  t.equal(later.answers[0]!.decision, 'granted', 'after capacityErrorTtlMs spot is tried again')
})

t.test('dynamic_ondemand_fallback: on-demand while spot is gone, back to spot when it returns', async (t) => {
  const aws = provider('aws', 'aws', { spot: true })
  const spot = offering('aws', 'aws', 0.2, { zone: 'a', spot: true })
  const od = offering('aws', 'aws', 0.6, { zone: 'a' })
  const h = new Harness(policy({ burst: { costBudget: 2 }, service: { dynamicOndemandFallback: true }, providers: [aws] }), [{ ...spot, available: false }, od])
  const r = h.decide(T0, { burst: [{ id: 'r', count: 1 }] })
  t.match(r.answers[0], { decision: 'granted', reason: /1 on on-demand: spot unavailable \(dynamic_ondemand_fallback\)/ })
  const f = 'd1-1-0'
  t.match(h.rec(f), { fallback: true, offering: { spot: false } })
  h.launched(f, 'i-od', T0 + MIN)
  const fm = burstMember(f, 'i-od', 'aws')
  h.decide(T0 + 2 * MIN, { members: [fm] })
  t.equal(h.state(f), 'ready')
  h.prices = [spot, od] // spot is back
  const back = h.decide(T0 + 3 * MIN, { members: [fm] })
  const launch = back.actions.find((a) => a.op === 'launch')
  t.ok(launch, 'a spot replacement is launched')
  t.match(h.rec(launch!.key), { replaces: f, offering: { spot: true } })
  t.equal(h.state(f), 'ready', 'the fallback keeps serving until the replacement is ready')
  h.launched(launch!.key, 'i-spot', T0 + 4 * MIN)
  const sm = burstMember(launch!.key, 'i-spot', 'aws', { spot: true })
  h.decide(T0 + 5 * MIN, { members: [fm, { ...sm, replica: { ...sm.replica!, ready: false } }] })
  t.equal(h.state(f), 'ready', 'the replacement is up but not ready: the fallback stays')
  const swap = h.decide(T0 + 6 * MIN, { members: [fm, sm] })
  t.equal(h.state(launch!.key), 'ready')
  t.equal(h.state(f), 'draining', 'the replacement is ready: the fallback drains')
  t.match(swap.lines[0], /drain fallback d1-1-0 \(spot d1-\d+-0 ready\)/)
})

t.test('auto mode: scale up on load, down only after the window', async (t) => {
  const p = policy({
    burst: { mode: 'auto', costBudget: 10, queueDepthThreshold: 100, scaleDownDelayMs: 5 * MIN, launchTimeoutMs: HOUR },
    service: { minReplicas: 1, maxReplicas: 10, targetQpsPerReplica: 5, upscaleDelayMs: 0, downscaleDelayMs: 20 * MIN },
    providers: [provider('aws', 'aws', { spot: true })]
  })
  const h = new Harness(p, [offering('aws', 'aws', 0.2, { zone: 'a', spot: true })])
  const base = (qps: number, queued = 0) => [
    { id: 's1', name: 's1', state: 'alive' as const, draining: false, lastSeenAt: T0, provider: 'static', region: 'r', spot: false, costPerHour: 0, voter: true, instance: null, replica: { ready: true, models: ['m'], slots: 4, inflight: 0, queued, qps } }
  ]
  let r = h.decide(T0, { members: base(4) })
  t.equal(r.auto?.direction, 'hold', '4 qps on one always-on replica at 5/replica: nothing to do')
  t.equal(r.actions.length, 0)
  r = h.decide(T0 + 10_000, { members: base(22) })
  t.equal(r.auto?.desired, 4, '22 qps → 5 replicas, 1 always-on → 4 burst')
  t.equal(r.actions.filter((a) => a.op === 'launch').length, 4)
  t.match(r.lines[0], /^tick d1-\d+: auto: 22.0 qps at target_qps_per_replica 5 → 5 replicas; .*: up 4/)
  r = h.decide(T0 + 20_000, { members: base(22) })
  t.equal(r.actions.length, 0, 'pending launches count: no second launch for the same load')
  r = h.decide(T0 + 30_000, { members: base(1) })
  t.equal(r.auto?.direction, 'hold', 'load gone: hold until the downscale window has passed')
  r = h.decide(T0 + 21 * MIN, { members: base(1) })
  t.equal(r.auto?.direction, 'down', 'after the window')
  t.equal(r.actions.length, 4, 'the pending ones go (not serving yet: least useful)')

  // The queue: spawn's threshold.
  const q = new Harness(p, h.prices)
  r = q.decide(T0, { members: base(0, 90) })
  t.equal(r.actions.length, 0, 'a queue of 90 under a threshold of 100: nothing')
  r = q.decide(T0 + 10_000, { members: base(0, 150) })
  t.equal(r.auto?.desired, 9, 'queue 150 at 4 slots per replica → 150/4+1 = 38 replicas, capped by max_replicas 10 → 9 burst')
})

t.test('limits lowered under live capacity: the least useful are drained; a deposed leader decides nothing', async (t) => {
  const h = ws({ burst: { costBudget: 10 } })
  h.decide(T0, { burst: [{ id: 'r', count: 3 }] })
  for (const k of ['d1-1-0', 'd1-1-1', 'd1-1-2']) h.launched(k, `i-${k}`, T0 + MIN)
  const members = ['d1-1-0', 'd1-1-1', 'd1-1-2'].map((k, i) => burstMember(k, `i-${k}`, 'workstation', { replica: { ready: true, models: ['m'], slots: 4, inflight: i, queued: 0, qps: i } }))
  h.decide(T0 + 2 * MIN, { members })
  h.policy = { ...h.policy, burst: { ...h.policy.burst, maxCloudInstances: 1 } }
  const r = h.decide(T0 + 3 * MIN, { members })
  t.same(r.actions.map((a) => `${a.op} ${a.key}`), ['drain d1-1-0', 'drain d1-1-1'], 'the idle one first, then (equal price, same age) by key')
  t.match(r.lines[0], /drain d1-1-0 \(max_cloud_instances 1\)/)

  const stale = decide({ observations: obs({ term: 1, burst: [{ id: 'late', count: 1 }] }), ledger: { ...h.ledger, term: 2 }, policy: h.policy, prices: h.prices, now: T0 + 4 * MIN })
  t.match(stale.waiting, /^term 1 is older than the ledger's 2/)
  t.same([stale.entries, stale.actions, stale.answers], [[], [], []])
})

t.test('provider data is checked; request ids must be recordable; texts are clipped', async (t) => {
  const h = ws()
  h.prices = [{ ...h.prices[0]!, pricePerHour: Number.NaN }]
  let r = h.decide(T0, { burst: [{ id: 'r1', count: 1 }] })
  t.match(r.answers[0], { decision: 'refused', reason: /no offering available/ }, 'a NaN price is no offering')
  t.match(r.lines[0], /ignored 1 malformed offering/)
  h.prices = [offering('workstation', 'local', 0.3)]
  r = h.decide(T0 + 1000, { burst: [{ id: 'bad id with spaces', count: 1 }, { id: '__proto__', count: 1 }] })
  t.match(r.answers, [{ decision: 'refused', reason: /^request id must be/ }, { decision: 'refused', reason: /^request id must be/ }])
  t.same(r.entries, [], 'nothing recorded for them')
  const listing = { provider: 'workstation', at: T0, instances: [{ id: 'i', key: 'k', provider: 'workstation', region: 'local', spot: false, state: 'running' as const, launchedAt: -5, pricePerHour: 0.3 }] }
  r = h.decide(T0 + 2000, { listings: [listing] })
  t.match(r.lines[0], /ignored 1 malformed listed instance/)
  t.equal(Object.keys(h.ledger.instances).length, 0, 'not adopted on bad data')
  const big = ws({ burst: { costBudget: 1000, maxCloudInstances: 400 }, providers: [provider('workstation', 'local', { maxInstances: 400 })] })
  r = big.decide(T0, { burst: [{ id: 'many', count: 300 }] })
  const d = r.entries.find((e) => e.type === 'decision')!
  t.ok(d.type === 'decision' && d.line.length <= 2000 && d.line.endsWith('…'), 'a long line is clipped in the record')
  t.ok(r.lines[0]!.length > 2000, 'the log line itself is whole')
})

t.test('a day into a new month, what finished before it is compacted away', async (t) => {
  const h = ws()
  const march = Date.UTC(2026, 2, 10)
  h.decide(march, { burst: [{ id: 'r', count: 1 }] })
  h.launched('d1-1-0', 'i-1', march + MIN)
  h.decide(march + 3 * MIN, { listings: [{ provider: 'workstation', at: march + 3 * MIN, instances: [] }] })
  t.equal(h.state('d1-1-0'), 'terminated')
  const before = Date.UTC(2026, 3, 1, 12)
  t.notOk(h.decide(before).entries.some((e) => e.type === 'ledger.compact'), 'not within the first day of the month')
  const r = h.decide(Date.UTC(2026, 3, 2, 1))
  t.ok(r.entries.some((e) => e.type === 'ledger.compact'), 'compacted')
  t.same(Object.keys(h.ledger.instances), [])
  t.ok(h.ledger.compacted.spend > 0, 'its spend is kept')
  t.notOk(h.decide(Date.UTC(2026, 3, 3)).entries.some((e) => e.type === 'ledger.compact'), 'once')
})
