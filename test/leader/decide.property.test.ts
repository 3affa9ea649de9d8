/**
 * Properties of the leader over random histories (fast-check): manual bursts
 * and terminations, launches that succeed, fail or hang, members that become
 * ready, die or leave, spot reclaims, price changes, orphans, provider
 * outages, load for the autoscaler, and leader changes that cut a decision
 * short (only a prefix of its entries commits; the new leader rebuilds from
 * the committed log alone and carries on).
 *
 * After every decision (sim.ts, checkDecision / checkWorld):
 *  1. the projected $/h of live + pending burst capacity ≤ cost_budget;
 *  2. instances kept ≤ max_cloud_instances and each provider's max_instances;
 *  3. intent first: whenever an intent would commit, everything that may
 *     bill (it included, terminating ones too) fits the budget and the counts;
 *  4. no key is launched twice: launch actions only for keys still
 *     provisioning without an instance, intents never reuse a key, no provider
 *     ever made two instances for one key, never two alive under one key;
 *  5. spend so far (total, today, this month) never goes down;
 *  6. every instance that runs is in the ledger as billing (no untracked
 *     spend) after a round in which every provider could be observed;
 *  7. decide() is deterministic, and its entries rebuild its ledger;
 *  8. spot notices (rebalance, interruption; EC2 takes an interrupted
 *     instance two minutes later): a spot intent never goes to a zone that
 *     saw an interruption recently while the same provider offers spot in
 *     another zone, available, at no more;
 *  9. one replacement per notice (besides launches that failed outright).
 */
import t from 'tap'
import fc from 'fast-check'
import { type Offering } from '../../providers/types.ts'
import type { Policy } from '../../daemon/leader/plan/types.ts'
import { defaultPolicy, HOUR, MIN, T0 } from './fixtures.ts'
import { World, type Crash, type FailKind } from './sim.ts'

type Op =
  | { t: 'burst', count: number, provider?: string, spot?: boolean }
  | { t: 'terminate', count?: number, all?: boolean }
  | { t: 'advance', ms: number }
  | { t: 'price', spot: boolean, zone?: 'a' | 'b', price: number }
  | { t: 'avail', spot: boolean, zone: 'a' | 'b', available: boolean }
  | { t: 'fail', provider: string, verb: 'create' | 'delete' | 'list' | 'offerings', kind: FailKind }
  | { t: 'kill', pick: number }
  | { t: 'interrupt', pick: number }
  | { t: 'notice', pick: number, kind: 'rebalance' | 'interruption' }
  | { t: 'leave', pick: number }
  | { t: 'busy', pick: number, inflight: number }
  | { t: 'hang' }
  | { t: 'ice' }
  | { t: 'load', qps: number, queue: number }
  | { t: 'orphan', spot: boolean }
  | { t: 'crash', crash: Crash }

interface Setup {
  policy: Policy
  offerings: Offering[]
}

/** The config schema's defaults: what a history's setup does not vary. */
const defaults = defaultPolicy()

const cents = (lo: number, hi: number): fc.Arbitrary<number> => fc.integer({ min: lo, max: hi }).map((c) => c / 100)

const setupArb: fc.Arbitrary<Setup> = fc.record({
  costBudget: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 6, arbitrary: cents(10, 400) }),
  maxCloud: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 6, arbitrary: fc.integer({ min: 1, max: 8 }) }),
  poolMax: fc.integer({ min: 0, max: 3 }),
  wsMax: fc.integer({ min: 1, max: 4 }),
  awsMax: fc.integer({ min: 1, max: 6 }),
  wsPrice: cents(0, 50),
  spotPrice: cents(5, 60),
  /** Zone b's spot price relative to zone a's: placement spreads, fallbacks must not cost more. */
  zoneSkew: cents(-4, 4),
  odPrice: cents(40, 150),
  auto: fc.boolean(),
  base: fc.integer({ min: 0, max: 2 }),
  dynamic: fc.boolean(),
  ttl: fc.constantFrom(0, 2 * HOUR),
  idle: fc.constantFrom(0, 30 * MIN),
  minCloud: fc.integer({ min: 0, max: 2 }),
  eager: fc.boolean()
}).map((s) => {
  const replica = { models: ['m'], slots: 4, command: 'sim' }
  const policy: Policy = {
    cluster: 'prop',
    burst: {
      ...defaults.burst,
      mode: s.auto ? 'auto' : 'manual',
      costBudget: s.costBudget,
      maxCloudInstances: s.maxCloud,
      minCloudInstances: Math.min(s.minCloud, s.maxCloud),
      queueDepthThreshold: 50,
      scaleDownDelayMs: 5 * MIN,
      ttlMs: s.ttl,
      idleTimeoutMs: s.idle,
      launchTimeoutMs: 10 * MIN,
      drainTimeoutMs: 5 * MIN,
      memberGraceMs: 2 * MIN,
      vanishGraceMs: 2 * MIN,
      actionRetryMs: MIN,
      capacityErrorTtlMs: 3 * MIN
    },
    service: { ...defaults.service, minReplicas: 1, maxReplicas: 12, targetQpsPerReplica: 5, upscaleDelayMs: 0, downscaleDelayMs: 10 * MIN, baseOndemandFallbackReplicas: s.base, dynamicOndemandFallback: s.dynamic },
    providers: [
      { name: 'pool', kind: 'ssh', maxInstances: s.poolMax, costPerHour: 0, spot: false, spotRecovery: 'FAILOVER', replica, config: {} },
      { name: 'ws', kind: 'local', maxInstances: s.wsMax, costPerHour: s.wsPrice, spot: false, spotRecovery: 'FAILOVER', replica, config: {} },
      { name: 'aws', kind: 'aws', maxInstances: s.awsMax, costPerHour: 0, spot: true, spotRecovery: s.eager ? 'EAGER_NEXT_REGION' : 'FAILOVER', replica, config: {} }
    ]
  }
  const offerings: Offering[] = [
    { provider: 'pool', kind: 'ssh', region: 'hel1', spot: false, pricePerHour: 0, available: true, capacity: 2 },
    { provider: 'ws', kind: 'local', region: 'local', spot: false, pricePerHour: s.wsPrice, available: true },
    { provider: 'aws', kind: 'aws', region: 'us-east-1', zone: 'a', instanceType: 'c7a', spot: true, pricePerHour: s.spotPrice, available: true },
    { provider: 'aws', kind: 'aws', region: 'us-east-1', zone: 'b', instanceType: 'c7a', spot: true, pricePerHour: Math.max(0.01, Number((s.spotPrice + s.zoneSkew).toFixed(2))), available: true },
    { provider: 'aws', kind: 'aws', region: 'us-east-1', zone: 'a', instanceType: 'c7a', spot: false, pricePerHour: s.odPrice, available: true },
    { provider: 'aws', kind: 'aws', region: 'us-east-1', zone: 'b', instanceType: 'c7a', spot: false, pricePerHour: s.odPrice, available: true }
  ]
  return { policy, offerings }
})

const providerArb = fc.constantFrom('pool', 'ws', 'aws')

/** Mid-month, or just before a month (and year) ends: spend periods roll over and the ledger compacts. */
const startArb = fc.constantFrom(T0, Date.UTC(2026, 2, 31, 20), Date.UTC(2026, 11, 31, 23, 30))

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('burst' as const), count: fc.integer({ min: 1, max: 6 }), provider: fc.option(providerArb, { nil: undefined }), spot: fc.option(fc.boolean(), { nil: undefined }) }, { requiredKeys: ['t', 'count'] }) },
  { weight: 2, arbitrary: fc.oneof(fc.record({ t: fc.constant('terminate' as const), count: fc.integer({ min: 1, max: 4 }) }), fc.record({ t: fc.constant('terminate' as const), all: fc.constant(true) })) },
  { weight: 8, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.constantFrom(5_000, 30_000, MIN, 2 * MIN, 3 * MIN, 10 * MIN, 45 * MIN, 3 * HOUR) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('price' as const), spot: fc.boolean(), zone: fc.option(fc.constantFrom('a' as const, 'b' as const), { nil: undefined }), price: cents(2, 200) }, { requiredKeys: ['t', 'spot', 'price'] }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('avail' as const), spot: fc.boolean(), zone: fc.constantFrom('a' as const, 'b' as const), available: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('fail' as const), provider: providerArb, verb: fc.constantFrom('create' as const, 'delete' as const, 'list' as const, 'offerings' as const), kind: fc.constantFrom('ice' as const, 'quota' as const, 'unavailable' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('kill' as const), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('interrupt' as const), pick: fc.nat(20) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('notice' as const), pick: fc.nat(20), kind: fc.constantFrom('rebalance' as const, 'interruption' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('leave' as const), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('busy' as const), pick: fc.nat(20), inflight: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'hang' as const }) },
  /** aws's next create answers InsufficientCapacity although its offerings said available: the launcher falls back. */
  { weight: 2, arbitrary: fc.constant({ t: 'ice' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('load' as const), qps: fc.integer({ min: 0, max: 60 }), queue: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('orphan' as const), spot: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('crash' as const), crash: fc.record({ keep: fc.double({ min: 0, max: 1, noNaN: true }), ran: fc.nat(255) }) }) }
)

/** Applies one operation to the world, then lets the leader decide (the crash op cuts that decision short). */
async function step (w: World, op: Op): Promise<void> {
  let crash: Crash | null = null
  switch (op.t) {
    case 'burst': {
      const r: { count: number, provider?: string, spot?: boolean } = { count: op.count }
      if (op.provider !== undefined) r.provider = op.provider
      if (op.spot !== undefined) r.spot = op.spot
      w.request(r)
      break
    }
    case 'terminate': w.terminate(op.all === true ? { all: true } : { count: op.count ?? 1 }); break
    case 'advance': w.now += op.ms; break
    case 'price': w.providers.get('aws')!.setPrice((o) => o.spot === op.spot && (op.zone === undefined || o.zone === op.zone), op.price); break
    case 'avail': w.providers.get('aws')!.setAvailable((o) => o.spot === op.spot && o.zone === op.zone, op.available); break
    case 'fail': w.inject(op.provider, op.verb, op.kind); break
    case 'kill': { const i = w.pick(op.pick); if (i !== undefined && !w.killedAt.has(i.key)) w.killedAt.set(i.key, w.now); break }
    case 'interrupt': { const i = w.pick(op.pick); if (i !== undefined) w.providers.get(i.provider)!.interrupt(i.id); break }
    case 'notice': { const spot = w.alive().filter((i) => i.spot); const i = spot.length === 0 ? undefined : spot[op.pick % spot.length]; if (i !== undefined) w.notice(i, op.kind); break }
    case 'leave': { const i = w.pick(op.pick); if (i !== undefined) w.left.add(i.key); break }
    case 'busy': { const i = w.pick(op.pick); if (i !== undefined) w.busy.set(i.key, op.inflight); break }
    case 'hang': w.hangNext = true; break
    case 'ice': w.inject('aws', 'create', 'ice'); break
    case 'load': w.staticQps = op.qps; w.staticQueue = op.queue; break
    case 'orphan': await w.orphan('aws', (o) => o.spot === op.spot); break
    case 'crash': crash = op.crash; break
  }
  w.now += 5_000
  await w.tick(crash)
}

const totals = { runs: 0, compactions: 0, decisions: 0, launches: 0, fallbacks: 0, launchFailures: 0, terminates: 0, drains: 0, crashes: 0, granted: 0, cut: 0, refused: 0, refusedOutcomes: 0, notices: 0, replacements: 0 }

t.test('the budget, the limits and idempotency hold over random histories with leader changes', async (t) => {
  await fc.assert(
    fc.asyncProperty(setupArb, fc.array(opArb, { minLength: 10, maxLength: 80, size: 'max' }), startArb, async (setup, ops, start) => {
      const w = new World(setup.policy, setup.offerings, start)
      for (const op of ops) await step(w, op)
      // Quiet rounds at the end: every provider answers, time passes, nothing new happens.
      for (let i = 0; i < 20; i++) { w.now += 2 * MIN; await w.tick(null) }
      // Then two days on: ttl, idle and month ends pass, the ledger compacts.
      for (let i = 0; i < 4; i++) { w.now += 12 * HOUR; await w.tick(null) }
      totals.runs += 1
      totals.compactions += w.log.filter((e) => e.type === 'ledger.compact').length
      for (const k of Object.keys(totals) as Array<keyof typeof totals>) if (k !== 'runs' && k !== 'compactions') totals[k] += w.stats[k]
    }),
    { numRuns: Number(process.env.MESHD_PROPERTY_RUNS ?? 300) }
  )
  t.comment(`exercised: ${JSON.stringify(totals)}`)
  t.ok(totals.launches > 100 && totals.crashes > 50 && totals.cut + totals.refused > 20 && totals.drains > 10, 'the histories exercised launches, leader changes, cuts and drains')
  t.ok(totals.fallbacks > 5 && totals.launchFailures > 20, 'the launcher (daemon/leader/launcher.ts) fell back on capacity errors and recorded failed launches')
  t.ok(totals.notices > 20 && totals.replacements > 10, 'members announced spot notices and the leader replaced them')
})
