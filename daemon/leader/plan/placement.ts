/**
 * Placement, pure: which offering the next burst replica should use.
 *
 * - Fill the cheapest provider first, by marginal cost: local processes and
 *   SSH pool hosts at their cost_per_hour (usually 0), then spot, then
 *   on-demand; the config's order breaks ties (it lists providers cheapest
 *   first).
 * - Within a provider, spread over its regions and zones: the zone holding
 *   the fewest of our instances first (round-robin by current count), the
 *   cheaper instance type first within a zone. Correlated spot reclaims hit a
 *   zone, not a provider.
 * - Skip offerings marked unavailable and those that recently answered
 *   InsufficientCapacity (the caller passes their ids).
 * - Spot reclaims (SkyServe's dynamic-fallback placer): within a provider,
 *   zones that saw no preemption recently come first and the very offering
 *   (type, zone, spot) that was interrupted last; avoided, not excluded, so
 *   they are still used when nothing else is left. A replacement for an
 *   interrupted instance (`want.away`) tries, per its provider's
 *   `spot_recovery`, the same region's other zones first (FAILOVER) or other
 *   regions first (EAGER_NEXT_REGION).
 * - Markets, as SkyServe's spot policy: a provider launches on its own market
 *   (`spot: true` providers on spot). `base_ondemand_fallback_replicas` keeps
 *   that many replicas on on-demand capacity at all times (always-on members,
 *   pool hosts, local processes and k8s count, as Kubernetes does in
 *   SkyServe); with `dynamic_ondemand_fallback`, a spot provider whose spot
 *   offerings cannot be had offers its on-demand ones instead, marked as
 *   fallback so the leader switches them back to spot when it can.
 * - `--provider P`, `--spot` and `--on-demand` restrict all of the above.
 *
 * Room (max_instances) and money are not judged here: allocate.ts walks this
 * ranking and asks the budget guard about each choice.
 */
import { offeringId, type Offering } from '../../../providers/types.ts'
import { micros } from './money.ts'
import { zoneKey } from '../ledger/ledger.ts'
import type { ProviderPolicy } from './types.ts'

/** An instance already placed (live or planned), for spreading and the on-demand base. */
export interface Placed {
  provider: string
  region: string
  zone?: string
  spot: boolean
}

export interface PlacementContext {
  /** In config order. */
  providers: readonly ProviderPolicy[]
  /** Current offerings of every provider (from offerings()). */
  offerings: readonly Offering[]
  /** Offering ids that answered InsufficientCapacity recently. */
  refused: ReadonlySet<string>
  /** Spot offering ids and zones (ledger.ts zoneKey) interrupted recently: ranked last within their provider. */
  preempted?: { offerings: ReadonlySet<string>, zones: ReadonlySet<string> }
  /** Burst instances live or planned. */
  placed: readonly Placed[]
  /** Always-on members serving on on-demand capacity (not burst). */
  staticOnDemand: number
  baseOndemandFallbackReplicas: number
  dynamicOndemandFallback: boolean
}

export interface Want {
  provider?: string
  /** true: spot only; false: on-demand only; absent: the policy decides. */
  spot?: boolean
  /** A replacement for an instance interrupted here: its provider's spot_recovery orders that provider's regions. */
  away?: { provider: string, region: string }
}

export interface Choice {
  offering: Offering
  /** On-demand standing in for spot that cannot be had. */
  fallback: boolean
  /** Chosen to keep the on-demand base. */
  base: boolean
}

export interface Ranking {
  choices: Choice[]
  /** When `choices` is empty: why (no such provider, spot gone ...). */
  none: string | null
}

/** local/ssh/k8s first, then spot, then on-demand cloud. */
export function tier (o: Offering): number {
  if (o.spot) return 1
  return o.kind === 'local' || o.kind === 'ssh' || o.kind === 'k8s' ? 0 : 2
}

function describe (o: Offering): string {
  return `${o.provider} ${o.region}${o.zone === undefined ? '' : `/${o.zone}`}${o.instanceType === undefined ? '' : ` ${o.instanceType}`} ${o.spot ? 'spot' : 'on-demand'}`
}

/** The offerings the next replica may use, best first. */
export function rank (ctx: PlacementContext, want: Want = {}): Ranking {
  const providers = want.provider === undefined ? ctx.providers : ctx.providers.filter((p) => p.name === want.provider)
  if (ctx.providers.length === 0) return { choices: [], none: "no provider configured (the leader's config has no `providers:`)" }
  if (providers.length === 0) return { choices: [], none: `no provider named ${want.provider ?? ''} (have ${ctx.providers.map((p) => p.name).join(', ')})` }

  const policyOf = new Map(providers.map((p) => [p.name, p]))
  const mine = ctx.offerings.filter((o) => policyOf.has(o.provider))
  if (mine.length === 0) return { choices: [], none: `no offering available: ${providers.map((p) => p.name).join(', ')} offer nothing` }

  const usable = (o: Offering): boolean => o.available && !ctx.refused.has(offeringId(o))
  const gone = mine.filter((o) => !usable(o))
  const up = mine.filter(usable)

  // Which markets each offering may serve for this request.
  const candidates: Choice[] = []
  const onDemandHeld = ctx.staticOnDemand + ctx.placed.filter((p) => !p.spot).length
  const needBase = want.spot === undefined && onDemandHeld < ctx.baseOndemandFallbackReplicas
  for (const o of up) {
    const p = policyOf.get(o.provider)!
    if (want.spot !== undefined) {
      if (o.spot === want.spot) candidates.push({ offering: o, fallback: false, base: false })
      continue
    }
    if (o.spot === p.spot) {
      candidates.push({ offering: o, fallback: false, base: needBase && !o.spot })
      continue
    }
    if (o.spot || !p.spot) continue // a spot offering of an on-demand provider: only on --spot
    // An on-demand offering of a spot provider: for the base, or standing in for spot that is gone.
    if (needBase) {
      candidates.push({ offering: o, fallback: false, base: true })
    } else if (ctx.dynamicOndemandFallback && !up.some((s) => s.provider === o.provider && s.spot)) {
      candidates.push({ offering: o, fallback: true, base: false })
    }
  }
  if (candidates.length === 0) {
    const market = want.spot === true ? 'spot ' : want.spot === false ? 'on-demand ' : ''
    const why = gone.length > 0 ? ` (unavailable: ${gone.map(describe).join(', ')})` : ''
    return { choices: [], none: `no ${market}offering available${why}` }
  }

  const perZone = new Map<string, number>()
  for (const p of ctx.placed) perZone.set(zoneKey(p), (perZone.get(zoneKey(p)) ?? 0) + 1)
  // Spot only (an on-demand instance is not reclaimed): 0 fine, 1 its zone
  // saw a preemption, 2 the offering itself was interrupted.
  const burnt = (o: Offering): number => ctx.preempted === undefined || !o.spot ? 0 : ctx.preempted.offerings.has(offeringId(o)) ? 2 : ctx.preempted.zones.has(zoneKey(o)) ? 1 : 0
  // 0 the region spot_recovery tries first, 1 the others (only for a replacement of an interrupted instance).
  const away = want.away
  const recovery = away === undefined ? undefined : policyOf.get(away.provider)?.spotRecovery
  const regionFirst = (o: Offering): number => away === undefined || o.provider !== away.provider ? 0 : (o.region === away.region) === (recovery !== 'EAGER_NEXT_REGION') ? 0 : 1
  const order = new Map(ctx.providers.map((p, i) => [p.name, i]))

  // Providers by their cheapest candidate within the same group (the
  // on-demand base, the rest), then tier, then config order. A fallback is
  // ranked by its price like any other: it only exists while its provider's
  // spot cannot be had.
  const group = (c: Choice): number => (c.base ? 0 : 1)
  const best = new Map<string, { price: number, tier: number }>()
  for (const c of candidates) {
    const k = `${group(c)}|${c.offering.provider}`
    const b = best.get(k)
    const price = micros(c.offering.pricePerHour)
    const t = tier(c.offering)
    if (b === undefined || price < b.price || (price === b.price && t < b.tier)) best.set(k, { price, tier: t })
  }
  const providerRank = (c: Choice): [number, number, number] => {
    const b = best.get(`${group(c)}|${c.offering.provider}`)!
    return [b.price, b.tier, order.get(c.offering.provider) ?? 0]
  }

  candidates.sort((a, b) => {
    // The on-demand base first when it is short.
    if (group(a) !== group(b)) return group(a) - group(b)
    const pa = providerRank(a)
    const pb = providerRank(b)
    for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!
    // Same provider: away from recent preemptions, the region spot_recovery
    // says, the emptiest zone, then the cheapest there.
    const ba = burnt(a.offering)
    const bb = burnt(b.offering)
    if (ba !== bb) return ba - bb
    const ga = regionFirst(a.offering)
    const gb = regionFirst(b.offering)
    if (ga !== gb) return ga - gb
    const za = perZone.get(zoneKey(a.offering)) ?? 0
    const zb = perZone.get(zoneKey(b.offering)) ?? 0
    if (za !== zb) return za - zb
    const d = micros(a.offering.pricePerHour) - micros(b.offering.pricePerHour)
    if (d !== 0) return d
    const ia = offeringId(a.offering)
    const ib = offeringId(b.offering)
    return ia < ib ? -1 : ia > ib ? 1 : 0
  })
  return { choices: candidates, none: null }
}

export { describe as describeOffering }
