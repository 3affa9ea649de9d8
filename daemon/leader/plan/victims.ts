/**
 * Which burst instances to let go first, pure: the least useful ones. Used by
 * `meshd burst --terminate`, by scale-down and by count limits lowered under
 * live capacity. In order:
 *
 * 1. not serving yet (provisioning, starting): nothing is lost, as SkyServe
 *    scales down pending replicas first;
 * 2. idle (nothing in flight or queued on its member);
 * 3. a fallback on-demand standing in for spot;
 * 4. the most expensive;
 * 5. the newest (the oldest has the warmest caches and the most history);
 * 6. the key, so the order is total.
 */
import type { InstanceRecord } from '../ledger/ledger.ts'
import { micros, perHour } from './money.ts'
import { isBusy, memberOf, type MemberIndex } from './observe.ts'

export interface VictimCandidate {
  key: string
  ready: boolean
  idle: boolean
  fallback: boolean
  pricePerHour: number
  since: number
}

/** How a live instance ranks as a victim, from its record and its member's load. */
export function victimOf (r: InstanceRecord, index: MemberIndex): VictimCandidate {
  const m = memberOf(index, r)
  return { key: r.key, ready: r.state === 'ready', idle: m === undefined || !isBusy(m), fallback: r.fallback, pricePerHour: r.pricePerHour, since: r.intentAt }
}

export interface Victim {
  key: string
  why: string
}

function cmp (a: VictimCandidate, b: VictimCandidate): number {
  return Number(a.ready) - Number(b.ready) ||
    Number(b.idle) - Number(a.idle) ||
    Number(b.fallback) - Number(a.fallback) ||
    micros(b.pricePerHour) - micros(a.pricePerHour) ||
    b.since - a.since ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
}

/** The `n` least useful candidates, first to go first, each with why. */
export function leastUseful (candidates: readonly VictimCandidate[], n: number): Victim[] {
  return [...candidates].sort(cmp).slice(0, Math.max(0, n)).map((c) => ({ key: c.key, why: whyOf(c) }))
}

function whyOf (c: VictimCandidate): string {
  const parts = [c.ready ? (c.idle ? 'idle' : 'busy') : 'not serving yet']
  if (c.fallback) parts.push('on-demand fallback')
  parts.push(perHour(c.pricePerHour))
  return parts.join(', ')
}
