/**
 * The budget guard, pure. Three limits bound burst capacity:
 *
 * - `burst.cost_budget`: $/h of all burst capacity together, pending launches
 *   included (an intent is charged from the moment it is decided, Karpenter
 *   style, so two ticks can never both spend the same headroom);
 * - `burst.max_cloud_instances`: burst instances, whatever provider they come
 *   from (in spawn every burst instance was a cloud one; a cap on one
 *   provider alone is its `max_instances`);
 * - each provider's `max_instances`.
 *
 * New launches must fit beside everything that may still bill, terminating
 * instances included: a terminate not yet confirmed is still money. When
 * prices rise so that the capacity we keep exceeds the budget, `shed` says
 * which instances to drop, most expensive first, so that after every decision
 * the projected spend is within the budget again.
 *
 * All sums are in whole micro-dollars (money.ts).
 */
import { micros, perHour, priceRange } from './money.ts'
import type { Policy } from './types.ts'

export interface Limits {
  costBudget: number
  maxCloudInstances: number
  /** Provider name → its max_instances. A provider not listed has no room. */
  providerMax: Readonly<Record<string, number>>
}

export function limitsOf (policy: Policy): Limits {
  const providerMax: Record<string, number> = {}
  for (const p of policy.providers) providerMax[p.name] = p.maxInstances
  return { costBudget: policy.burst.costBudget, maxCloudInstances: policy.burst.maxCloudInstances, providerMax }
}

/** What the guard counts of one instance. */
export interface Held {
  key: string
  provider: string
  pricePerHour: number
}

/** One more instance we would like. */
export interface Candidate {
  provider: string
  pricePerHour: number
}

export interface Usage {
  micros: number
  count: number
  byProvider: ReadonlyMap<string, number>
}

export type Limit =
  | { kind: 'cost_budget', budget: number, inUse: number, price: number }
  | { kind: 'max_cloud_instances', max: number, inUse: number }
  | { kind: 'max_instances', provider: string, max: number, inUse: number }

export function usageOf (held: Iterable<Held>): Usage {
  let m = 0
  let count = 0
  const byProvider = new Map<string, number>()
  for (const h of held) {
    m += micros(h.pricePerHour)
    count += 1
    byProvider.set(h.provider, (byProvider.get(h.provider) ?? 0) + 1)
  }
  return { micros: m, count, byProvider }
}

/** The usage with one more instance. */
export function plus (u: Usage, c: Candidate): Usage {
  const byProvider = new Map(u.byProvider)
  byProvider.set(c.provider, (byProvider.get(c.provider) ?? 0) + 1)
  return { micros: u.micros + micros(c.pricePerHour), count: u.count + 1, byProvider }
}

/** The limit that refuses one more instance beside `u`, or null when it fits. */
export function refusal (u: Usage, c: Candidate, limits: Limits): Limit | null {
  if (u.count + 1 > limits.maxCloudInstances) return { kind: 'max_cloud_instances', max: limits.maxCloudInstances, inUse: u.count }
  const pmax = Object.hasOwn(limits.providerMax, c.provider) ? limits.providerMax[c.provider] ?? 0 : 0
  const pUse = u.byProvider.get(c.provider) ?? 0
  if (pUse + 1 > pmax) return { kind: 'max_instances', provider: c.provider, max: pmax, inUse: pUse }
  if (u.micros + micros(c.pricePerHour) > micros(limits.costBudget)) {
    return { kind: 'cost_budget', budget: limits.costBudget, inUse: u.micros / 1_000_000, price: c.pricePerHour }
  }
  return null
}

/** The limit as it stood before `start`: the answer speaks of what was in use before this request. */
export function asBefore (limit: Limit, start: Usage): Limit {
  switch (limit.kind) {
    case 'cost_budget': return { ...limit, inUse: start.micros / 1_000_000 }
    case 'max_cloud_instances': return { ...limit, inUse: start.count }
    case 'max_instances': return { ...limit, inUse: start.byProvider.get(limit.provider) ?? 0 }
  }
}

/**
 * Why `n` (of those asked) is all a limit allows, for the answer's reason:
 * "cost_budget 1.00/h allows 3 at 0.30/h".
 */
export function describeLimit (limit: Limit, n: number, prices: readonly number[]): string {
  switch (limit.kind) {
    case 'cost_budget': {
      const at = priceRange(prices.length > 0 ? prices : [limit.price])
      const inUse = micros(limit.inUse) > 0 ? ` (${perHour(limit.inUse)} in use)` : ''
      return `cost_budget ${perHour(limit.budget)} allows ${n}${inUse === '' ? '' : ' more'} at ${at}${inUse}`
    }
    case 'max_cloud_instances':
      return `max_cloud_instances ${limit.max} allows ${n}${limit.inUse > 0 ? ` more (${limit.inUse} in use)` : ''}`
    case 'max_instances':
      return `${limit.provider} max_instances ${limit.max} allows ${n}${limit.inUse > 0 ? ` more (${limit.inUse} in use)` : ''}`
  }
}

export interface Fit {
  /** How many of the wishes fit. */
  count: number
  /** Their indices in `wishes`, in order. */
  accepted: number[]
  /** The first limit that refused a wish; null when all fit. */
  binding: Limit | null
  reason: string
}

/**
 * How many of `wishes` (in order of preference) fit beside `held`. A wish that
 * does not fit is skipped and the next one tried (a cheaper one or another
 * provider may still fit); the first refusal is the binding limit.
 */
export function fit (held: Iterable<Held>, wishes: readonly Candidate[], limits: Limits): Fit {
  let u = usageOf(held)
  const start = u
  const accepted: number[] = []
  let binding: Limit | null = null
  wishes.forEach((w, i) => {
    const no = refusal(u, w, limits)
    if (no === null) {
      accepted.push(i)
      u = plus(u, w)
    } else {
      binding ??= no
    }
  })
  const prices = accepted.map((i) => wishes[i]!.pricePerHour)
  const reason = binding === null
    ? withinBudget(limits, start, u)
    : describeLimit(asBefore(binding, start), accepted.length, prices)
  return { count: accepted.length, accepted, binding: binding === null ? null : asBefore(binding, start), reason }
}

function withinBudget (limits: Limits, before: Usage, after: Usage): string {
  return `within cost_budget ${perHour(limits.costBudget)}: ${perHour(before.micros / 1_000_000)} → ${perHour(after.micros / 1_000_000)}`
}

// ---------------------------------------------------------------------------
// Shedding

/** An instance we keep, with what the tie-breaks need. */
export interface Kept extends Held {
  /** Serving already? A pending one is shed before a serving one at the same price. */
  ready: boolean
  /** When it was decided; the newest goes first at the same price. */
  since: number
}

export interface Shed {
  keys: string[]
  reason: string | null
}

/**
 * When the capacity we keep costs more than the budget (prices rose, an
 * orphan was adopted), the instances to drop so that it fits again: most
 * expensive first; at equal price a pending one before a serving one, the
 * newest first. Dropped means terminated at once: draining would keep
 * spending over the budget.
 */
export function shed (kept: readonly Kept[], limits: Limits): Shed {
  const budget = micros(limits.costBudget)
  let total = 0
  for (const k of kept) total += micros(k.pricePerHour)
  if (total <= budget) return { keys: [], reason: null }
  const order = [...kept].sort((a, b) =>
    micros(b.pricePerHour) - micros(a.pricePerHour) ||
    Number(a.ready) - Number(b.ready) ||
    b.since - a.since ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  const keys: string[] = []
  const was = total
  for (const k of order) {
    if (total <= budget) break
    keys.push(k.key)
    total -= micros(k.pricePerHour)
  }
  return {
    keys,
    reason: `cost_budget ${perHour(limits.costBudget)} exceeded by live burst capacity at ${perHour(was / 1_000_000)}: shed ${keys.length}, most expensive first, to ${perHour(total / 1_000_000)}`
  }
}
