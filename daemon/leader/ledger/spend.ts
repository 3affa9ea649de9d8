/**
 * Spend so far: each instance's price integrated over its lifetime (from the
 * provider's launch time until it was confirmed gone, or now), clipped to the
 * period. Periods are UTC days and months, as cloud bills are.
 *
 * Only instances that existed bill: an intent the provider never fulfilled
 * costs nothing here, although the budget reserved its price.
 *
 * Monotone: with entries stamped at the leader's clock and `now` never behind
 * it, a later ledger and a later `now` never show less spent.
 */
import type { InstanceRecord, LedgerState } from './ledger.ts'

const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000

export function dayStartUtc (now: number): number {
  return Math.floor(now / DAY_MS) * DAY_MS
}

export function monthStartUtc (now: number): number {
  const d = new Date(now)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
}

/** Dollars one instance cost within [from, to). */
export function costBetween (r: Pick<InstanceRecord, 'launchedAt' | 'endedAt' | 'charges'>, from: number, to: number): number {
  if (r.launchedAt === null) return 0
  const start = Math.max(from, r.launchedAt)
  const end = Math.min(to, r.endedAt ?? to)
  if (end <= start) return 0
  let dollars = 0
  for (let i = 0; i < r.charges.length; i++) {
    const c = r.charges[i]!
    const segStart = Math.max(start, c.at)
    const segEnd = Math.min(end, r.charges[i + 1]?.at ?? end)
    if (segEnd > segStart) dollars += c.pricePerHour * (segEnd - segStart) / HOUR_MS
  }
  return dollars
}

/** Dollars one instance cost over its whole life up to `until`. */
export function lifetimeCost (r: Pick<InstanceRecord, 'launchedAt' | 'endedAt' | 'charges'>, until: number): number {
  return costBetween(r, 0, until)
}

export interface Spend {
  /** Since 00:00 UTC today. */
  today: number
  /** Since the 1st of this month, 00:00 UTC. */
  month: number
  /** Since the ledger began (compacted instances included). */
  total: number
}

export function spend (state: LedgerState, now: number): Spend {
  const day = dayStartUtc(now)
  const month = monthStartUtc(now)
  let today = 0
  let thisMonth = 0
  let total = state.compacted.spend
  for (const r of Object.values(state.instances)) {
    today += costBetween(r, day, now)
    thisMonth += costBetween(r, month, now)
    total += costBetween(r, 0, now)
  }
  return { today, month: thisMonth, total }
}
