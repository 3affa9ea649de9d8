/**
 * Allocation, pure: up to k more replicas, placed one at a time (placement
 * ranks the offerings for the next one) and each checked by the budget guard
 * before it is taken, Karpenter style: the limits are judged when the intent
 * is made, beside everything already held. A choice the guard refuses is
 * skipped for the next one in the ranking (another zone, another provider);
 * when none fits, allocation stops and the refusal of the best choice is the
 * binding limit the answer names.
 */
import { offeringId, type Offering } from '../../../providers/types.ts'
import { asBefore, plus, refusal, usageOf, describeLimit, type Held, type Limit, type Limits } from './budget.ts'
import { micros, perHour } from './money.ts'
import { rank, type PlacementContext, type Want } from './placement.ts'

export interface Slot {
  offering: Offering
  /** Same-provider offerings the launcher may try instead, never dearer than `offering`. */
  fallbacks: Offering[]
  fallback: boolean
  base: boolean
}

export interface Allocation {
  slots: Slot[]
  /** The limit that stopped it short of k; null when it got k or stopped for want of offerings. */
  binding: Limit | null
  /** Why it stopped short when no limit did: no provider, no offering available ... */
  none: string | null
  /** The answer's reason. */
  reason: string
}

export function allocate (k: number, ctx: PlacementContext, want: Want, held: readonly Held[], limits: Limits): Allocation {
  const start = usageOf(held)
  let usage = start
  const placed = [...ctx.placed]
  const planned = new Map<string, number>()
  const slots: Slot[] = []
  let binding: Limit | null = null
  let none: string | null = null
  let stop: Limit[] = []

  for (let i = 0; i < k; i++) {
    const ranking = rank({ ...ctx, placed }, want)
    if (ranking.choices.length === 0) {
      none = ranking.none
      break
    }
    let taken = false
    const refusals: Limit[] = []
    for (const c of ranking.choices) {
      const o = c.offering
      const id = offeringId(o)
      if (o.capacity !== undefined && (planned.get(id) ?? 0) >= o.capacity) continue
      const no = refusal(usage, { provider: o.provider, pricePerHour: o.pricePerHour }, limits)
      if (no !== null) {
        refusals.push(no)
        continue
      }
      const fallbacks = ranking.choices
        .map((x) => x.offering)
        .filter((x) => x.provider === o.provider && x.spot === o.spot && offeringId(x) !== id && micros(x.pricePerHour) <= micros(o.pricePerHour))
      slots.push({ offering: o, fallbacks, fallback: c.fallback, base: c.base })
      usage = plus(usage, { provider: o.provider, pricePerHour: o.pricePerHour })
      const p: { provider: string, region: string, zone?: string, spot: boolean } = { provider: o.provider, region: o.region, spot: o.spot }
      if (o.zone !== undefined) p.zone = o.zone
      placed.push(p)
      planned.set(id, (planned.get(id) ?? 0) + 1)
      taken = true
      break
    }
    if (!taken) {
      if (refusals.length > 0) {
        binding = asBefore(refusals[0]!, start)
        stop = refusals.map((l) => asBefore(l, start))
      } else {
        none = 'no offering with capacity left'
      }
      break
    }
  }

  const prices = slots.map((s) => s.offering.pricePerHour)
  let reason: string
  if (binding !== null) reason = describeStop(stop, slots, prices)
  else if (none !== null) reason = slots.length === 0 ? none : `${none}; placed ${slots.length}`
  else reason = `within limits: ${perHour(usage.micros / 1_000_000)} of cost_budget ${perHour(limits.costBudget)}, ${usage.count} of max_cloud_instances ${limits.maxCloudInstances}`
  return { slots, binding, none, reason }
}

/**
 * Why allocation stopped: every limit that refused a choice for the next
 * replica, best choice first. A limit on the whole (cost_budget,
 * max_cloud_instances) reads "allows N"; so does a provider's max_instances
 * when everything went to that provider; otherwise that provider is "full".
 */
function describeStop (stop: readonly Limit[], slots: readonly Slot[], prices: readonly number[]): string {
  const seen = new Set<string>()
  const phrases: string[] = []
  for (const l of stop) {
    const id = l.kind === 'max_instances' ? `${l.kind}/${l.provider}` : l.kind
    if (seen.has(id)) continue
    seen.add(id)
    if (l.kind !== 'max_instances' || slots.every((s) => s.offering.provider === l.provider)) phrases.push(describeLimit(l, slots.length, prices))
    else phrases.push(`${l.provider} max_instances ${l.max} full`)
  }
  return phrases.join('; ')
}
