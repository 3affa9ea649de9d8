import t from 'tap'
import { offeringId, type Offering } from '../../providers/types.ts'
import { rank, type PlacementContext, type Placed } from '../../daemon/leader/plan/placement.ts'
import { allocate } from '../../daemon/leader/plan/allocate.ts'
import { limitsOf } from '../../daemon/leader/plan/budget.ts'
import { hybrid, offering, policy, provider } from './fixtures.ts'

function ctx (over: Partial<PlacementContext> = {}): PlacementContext {
  const h = hybrid()
  return {
    providers: h.policy.providers,
    offerings: h.prices,
    refused: new Set(),
    placed: [],
    staticOnDemand: 0,
    baseOndemandFallbackReplicas: 0,
    dynamicOndemandFallback: false,
    ...over
  }
}

/** "aws us-east-1a spot" style names for a ranking, so rows read as intent. */
function names (os: Offering[]): string[] {
  return os.map((o) => `${o.provider}${o.zone === undefined ? '' : ` ${o.zone}`}${o.spot ? ' spot' : ''}`)
}

const spotGone = (os: Offering[]): Offering[] => os.map((o) => (o.spot ? { ...o, available: false } : o))

t.test('rank: the next replica, best offering first', async (t) => {
  const { prices } = hybrid()
  const rows: Array<{ name: string, ctx: PlacementContext, want?: { provider?: string, spot?: boolean }, expect: string[], none?: string }> = [
    { name: 'cheapest provider first: free pool, spot 0.20, workstation 0.30', ctx: ctx(), expect: ['hetzner', 'aws us-east-1a spot', 'aws us-east-1b spot', 'workstation'] },
    { name: '--provider workstation', ctx: ctx(), want: { provider: 'workstation' }, expect: ['workstation'] },
    { name: '--on-demand: the pool, the workstation, then AWS on-demand', ctx: ctx(), want: { spot: false }, expect: ['hetzner', 'workstation', 'aws us-east-1a', 'aws us-east-1b'] },
    { name: '--spot', ctx: ctx(), want: { spot: true }, expect: ['aws us-east-1a spot', 'aws us-east-1b spot'] },
    { name: 'spread: the zone holding fewer of ours first', ctx: ctx({ placed: [{ provider: 'aws', region: 'us-east-1', zone: 'us-east-1a', spot: true }] }), want: { spot: true }, expect: ['aws us-east-1b spot', 'aws us-east-1a spot'] },
    { name: 'an unavailable offering is skipped', ctx: ctx({ offerings: prices.map((o) => (o.zone === 'us-east-1a' && o.spot ? { ...o, available: false } : o)) }), want: { spot: true }, expect: ['aws us-east-1b spot'] },
    { name: 'an offering that refused for capacity is skipped', ctx: ctx({ refused: new Set([offeringId(prices[2]!)]) }), want: { spot: true }, expect: ['aws us-east-1b spot'] },
    { name: 'spot gone, no dynamic fallback: no on-demand from the spot provider', ctx: ctx({ offerings: spotGone(prices) }), expect: ['hetzner', 'workstation'] },
    { name: 'spot gone, dynamic_ondemand_fallback: on-demand by price', ctx: ctx({ offerings: spotGone(prices), dynamicOndemandFallback: true }), expect: ['hetzner', 'workstation', 'aws us-east-1a', 'aws us-east-1b'] },
    { name: 'spot there, dynamic_ondemand_fallback: no fallback needed', ctx: ctx({ dynamicOndemandFallback: true }), want: { provider: 'aws' }, expect: ['aws us-east-1a spot', 'aws us-east-1b spot'] },
    { name: '--spot with spot gone: none, and why', ctx: ctx({ offerings: spotGone(prices) }), want: { spot: true }, expect: [], none: 'no spot offering available (unavailable: aws us-east-1/us-east-1a c7a.4xlarge spot, aws us-east-1/us-east-1b c7a.4xlarge spot)' },
    { name: 'an unknown provider', ctx: ctx(), want: { provider: 'gcp' }, expect: [], none: 'no provider named gcp (have hetzner, workstation, aws)' },
    { name: 'no providers at all', ctx: ctx({ providers: [] }), expect: [], none: "no provider configured (the leader's config has no `providers:`)" }
  ]
  for (const r of rows) {
    const got = rank(r.ctx, r.want)
    t.same(names(got.choices.map((c) => c.offering)), r.expect, r.name)
    if (r.none !== undefined) t.equal(got.none, r.none, `${r.name}: reason`)
  }
})

t.test('base_ondemand_fallback_replicas: on-demand first until the base is kept', async (t) => {
  const aws = provider('aws', 'aws', { spot: true })
  const prices = hybrid().prices.filter((o) => o.provider === 'aws')
  const base = (placed: Placed[], staticOnDemand = 0): string[] =>
    names(rank(ctx({ providers: [aws], offerings: prices, baseOndemandFallbackReplicas: 1, placed, staticOnDemand })).choices.map((c) => c.offering))
  t.same(base([]).slice(0, 2), ['aws us-east-1a', 'aws us-east-1b'], 'none on-demand: on-demand first')
  t.ok(rank(ctx({ providers: [aws], offerings: prices, baseOndemandFallbackReplicas: 1 })).choices[0]!.base, 'marked as the base')
  t.same(base([{ provider: 'aws', region: 'us-east-1', zone: 'us-east-1a', spot: false }]), ['aws us-east-1b spot', 'aws us-east-1a spot'], 'base kept: back to spot (and spread away from the on-demand one)')
  t.same(base([], 1), ['aws us-east-1a spot', 'aws us-east-1b spot'], 'an always-on member counts toward the base (as Kubernetes does in SkyServe)')
  t.same(names(rank(ctx({ providers: [aws], offerings: prices, baseOndemandFallbackReplicas: 1 }), { spot: true }).choices.map((c) => c.offering)), ['aws us-east-1a spot', 'aws us-east-1b spot'], '--spot overrides the base')
})

t.test('allocate: placement walked under the budget guard', async (t) => {
  const h = hybrid()
  const limits = limitsOf(h.policy)
  const place = (k: number, over: Partial<PlacementContext> = {}, want = {}, costBudget = 10): ReturnType<typeof allocate> =>
    allocate(k, ctx(over), want, [], { ...limits, costBudget })

  let a = place(5)
  t.same(names(a.slots.map((s) => s.offering)), ['hetzner', 'hetzner', 'aws us-east-1a spot', 'aws us-east-1b spot', 'aws us-east-1a spot'], 'free pool filled, then spot round-robin over zones')
  t.equal(a.binding, null)
  t.equal(a.reason, 'within limits: 0.60/h of cost_budget 10.00/h, 5 of max_cloud_instances 20')

  a = place(5, {}, {}, 0.5)
  t.equal(a.slots.length, 4, 'two free, two spot at 0.20 under 0.50')
  t.equal(a.reason, 'cost_budget 0.50/h allows 4 at 0.00–0.20/h')

  a = place(6, {}, { provider: 'workstation' })
  t.equal(a.slots.length, 4)
  t.equal(a.reason, 'workstation max_instances 4 allows 4')

  a = place(3, { offerings: h.prices.map((o) => (o.provider === 'hetzner' ? { ...o, capacity: 1 } : o)) }, { provider: 'hetzner' })
  t.equal(a.slots.length, 1, 'an offering with capacity 1 takes one')
  t.equal(a.reason, 'no offering with capacity left; placed 1')

  a = place(2, { offerings: spotGone(h.prices) }, { spot: true })
  t.equal(a.slots.length, 0)
  t.match(a.reason, /^no spot offering available/)

  // The launcher's fallbacks never cost more than what the budget reserved.
  const zonesApart: Offering[] = [
    offering('aws', 'aws', 0.25, { zone: 'a', spot: true }),
    offering('aws', 'aws', 0.2, { zone: 'b', spot: true }),
    offering('aws', 'aws', 0.3, { zone: 'c', spot: true })
  ]
  const awsOnly = { providers: [provider('aws', 'aws', { spot: true })], offerings: zonesApart }
  a = allocate(1, ctx(awsOnly), {}, [], limits)
  t.equal(a.slots[0]!.offering.zone, 'b', 'all zones empty: the cheapest')
  t.same(a.slots[0]!.fallbacks, [], 'nothing cheaper to fall back to')
  a = allocate(1, ctx({ ...awsOnly, placed: [{ provider: 'aws', region: 'us-east-1', zone: 'b', spot: true }] }), {}, [], limits)
  t.equal(a.slots[0]!.offering.zone, 'a', 'spread: the cheaper of the empty zones')
  t.same(a.slots[0]!.fallbacks.map((o) => o.zone), ['b'], 'fallbacks: same provider and market, never dearer than the reservation (c at 0.30 is not one)')
})

t.test('allocate: the cheapest provider with room, then the next', async (t) => {
  const p = policy({ providers: [provider('pool', 'ssh', { maxInstances: 1 }), provider('ws', 'local', { maxInstances: 2 })] })
  const prices = [offering('pool', 'ssh', 0), offering('ws', 'local', 0.3)]
  const a = allocate(4, { ...ctx(), providers: p.providers, offerings: prices }, {}, [{ key: 'x', provider: 'pool', pricePerHour: 0 }], limitsOf(p))
  t.same(a.slots.map((s) => s.offering.provider), ['ws', 'ws'], 'the pool is full (1 held): the workstation')
  t.equal(a.reason, 'pool max_instances 1 full; ws max_instances 2 allows 2', 'every limit that stopped it, best choice first')
})

t.test('rank: recent preemptions last within a provider (the interrupted offering last of all); spot_recovery orders regions for a replacement', async (t) => {
  const aws = provider('aws', 'aws', { maxInstances: 10, spot: true })
  const o = (region: string, zone: string, price: number, type = 'c7a'): Offering => offering('aws', 'aws', price, { region, zone, instanceType: type, spot: true })
  const offerings = [o('us-east-1', 'a', 0.2), o('us-east-1', 'a', 0.25, 'm7a'), o('us-east-1', 'b', 0.3), o('us-west-2', 'a', 0.2)]
  const base = { providers: [aws], offerings, refused: new Set<string>(), placed: [], staticOnDemand: 0, baseOndemandFallbackReplicas: 0, dynamicOndemandFallback: false }
  const zonesOf = (r: ReturnType<typeof rank>): string[] => r.choices.map((c) => `${c.offering.region}/${c.offering.zone ?? ''} ${c.offering.instanceType ?? ''}`)
  t.same(zonesOf(rank(base)), ['us-east-1/a c7a', 'us-west-2/a c7a', 'us-east-1/a m7a', 'us-east-1/b c7a'], 'no preemption: the cheapest first')
  const burnt = { offerings: new Set([offeringId(offerings[0]!)]), zones: new Set(['aws/us-east-1/a']) }
  t.same(zonesOf(rank({ ...base, preempted: burnt })), ['us-west-2/a c7a', 'us-east-1/b c7a', 'us-east-1/a m7a', 'us-east-1/a c7a'], 'zones free of preemptions first, cheapest first; the preempted zone after; the interrupted offering last')
  const failover = rank({ ...base, preempted: burnt }, { away: { provider: 'aws', region: 'us-east-1' } })
  t.same(zonesOf(failover).slice(0, 2), ['us-east-1/b c7a', 'us-west-2/a c7a'], 'FAILOVER: the same region\'s other zone first, though dearer')
  const eager = rank({ ...base, providers: [{ ...aws, spotRecovery: 'EAGER_NEXT_REGION' as const }], preempted: burnt }, { away: { provider: 'aws', region: 'us-east-1' } })
  t.same(zonesOf(eager)[0], 'us-west-2/a c7a', 'EAGER_NEXT_REGION: another region first')
})

t.test('the decision line names the market of each cloud slot, and why an on-demand one was taken', async (t) => {
  const { describeSlots } = await import('../../daemon/leader/plan/requests.ts')
  const spot = offering('aws-spot', 'aws', 0.03, { zone: 'us-east-1a', spot: true })
  const od = offering('aws-spot', 'aws', 0.1, { zone: 'us-east-1a', spot: false })
  const local = offering('workstation', 'local', 0)
  t.match(describeSlots([{ offering: spot, fallbacks: [], fallback: false, base: false }, { offering: spot, fallbacks: [], fallback: false, base: false }]), /us-east-1a .*spot ×2 at 0\.03\/h$/)
  t.match(describeSlots([{ offering: od, fallbacks: [], fallback: true, base: false }]), /on-demand \(fallback: spot unavailable\) ×1 at 0\.10\/h$/)
  t.match(describeSlots([{ offering: od, fallbacks: [], fallback: false, base: true }]), /on-demand \(base_ondemand_fallback_replicas\) ×1/)
  t.match(describeSlots([{ offering: od, fallbacks: [], fallback: false, base: false }]), / on-demand ×1/)
  t.notMatch(describeSlots([{ offering: local, fallbacks: [], fallback: false, base: false }]), /spot|on-demand/, 'a local process has no market')
})
