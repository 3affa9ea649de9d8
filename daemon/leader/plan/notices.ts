/**
 * Notices from a provider that an instance will be taken away (EC2 spot: an
 * interruption two minutes ahead, or a rebalance recommendation), pure. The
 * burst node reads them from its instance metadata and says so in its
 * heartbeat (daemon/burst-node/); the leader:
 *
 * 1. records the notice in the ledger (`instance.notice`, once per kind), so
 *    that every leader knows which offering was preempted (placement ranks
 *    it, and its zone, last for `preemptionMemoryMs`) and which instance a
 *    replacement is for;
 * 2. on an interruption, drains the instance at once with the termination
 *    time as its drain deadline (the node drains itself too; its record then
 *    ends when the node is idle, when it vanishes from the provider's list,
 *    or at that deadline — until then it may bill, and the budget counts it);
 * 3. launches one replacement (`replaces: <key>`), whatever the autoscaler
 *    would say — the capacity is about to go — within the budget, away from
 *    the preempted zone, in the order of the provider's `spot_recovery`, on
 *    on-demand when spot cannot be had and dynamic_ondemand_fallback allows
 *    (the back-to-spot step returns it to spot later). A replacement whose
 *    launch failed is tried again; one that exists or existed is not;
 * 4. on a rebalance recommendation, drains the warned instance once its
 *    replacement is ready (as the back-to-spot switch does).
 *
 * An instance already draining for another reason (ttl, idle, a terminate
 * request) when the notice comes is not replaced: it was going anyway.
 */
import { allocate } from './allocate.ts'
import { limitsOf } from './budget.ts'
import { isFinished, isLive, records, type InstanceRecord, type LedgerState } from '../ledger/ledger.ts'
import { memberOf, type MemberIndex } from './observe.ts'
import { describeOffering } from './placement.ts'
import { describeSlots, heldOf, placementOf, type RequestContext } from './requests.ts'
import { drain, emit, launch, record, type Work } from './work.ts'
import type { Policy } from './types.ts'

function iso (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function noticeText (r: InstanceRecord): string {
  const n = r.notice
  if (n === null) return ''
  return n.kind === 'interruption'
    ? `spot interruption of ${r.key} (${describeOffering(r.offering)}) at ${iso(n.at)}`
    : `rebalance recommendation for ${r.key} (${describeOffering(r.offering)})`
}

/** Step 3a, before the lifecycle: record what members announce; drain the interrupted. */
export function recordNotices (w: Work, policy: Policy, index: MemberIndex): void {
  for (const r0 of records(w.ledger)) {
    if (isFinished(r0)) continue
    const m = memberOf(index, r0)
    const n = m?.notice
    if (n !== undefined && m?.state === 'alive' && (r0.notice === null || (r0.notice.kind === 'rebalance' && n.kind === 'interruption'))) {
      const what = n.kind === 'interruption' ? `goes at ${iso(n.at)}` : `noticed ${iso(n.at)}`
      // Serving, or on its way up: the capacity it stands for is about to go.
      const replace = r0.notice?.replace ?? (r0.state === 'provisioning' || r0.state === 'starting' || r0.state === 'ready')
      emit(w, { type: 'instance.notice', key: r0.key, kind: n.kind, noticeAt: n.at, replace, reason: `member ${m.name} announced a ${n.kind === 'interruption' ? 'spot interruption' : 'rebalance recommendation'}: ${what}` })
      w.notes.push(`notice: ${noticeText(record(w, r0.key))}`)
      w.causes.add('spot_notice')
    }
    const r = record(w, r0.key)
    if (r.notice?.kind === 'interruption' && (r.state === 'ready' || r.state === 'starting')) {
      const how = drain(w, r.key, m, policy.burst, `${noticeText(r)}: drain until then`, r.notice.at)
      w.notes.push(`${how} ${r.key} (spot interruption at ${iso(r.notice.at)})`)
      w.causes.add('spot_notice')
    }
  }
}

/**
 * Whether this record's notice still calls for a replacement: it was serving
 * when the notice came, and it still is (rebalance), or the interruption is
 * recent (it drains, or is already gone: a replacement the budget held back
 * while it billed comes once it stops).
 */
function wantsReplacement (r: InstanceRecord, now: number, policy: Policy): boolean {
  const n = r.notice
  if (n === null || !n.replace) return false
  if (n.kind === 'rebalance') return r.state === 'ready' || r.state === 'starting' || r.state === 'provisioning'
  return isLive(r) || now - Math.max(n.at, n.recordedAt) < policy.burst.launchTimeoutMs
}

/** The replacement launched for a notice, if any: one whose launch failed outright does not count (it is tried again). */
export function replacementOf (ledger: LedgerState, key: string): InstanceRecord | undefined {
  return records(ledger).find((x) => x.replaces === key && x.state !== 'failed')
}

/** Step 6a: a replacement for each warned instance that has none; a rebalanced one drained once its replacement is ready. */
export function replaceNoticed (w: Work, c: RequestContext, tick: { id: string, ordinal: number }): void {
  const limits = limitsOf(c.policy)
  for (const r of records(w.ledger)) {
    if (!wantsReplacement(r, w.now, c.policy)) continue
    const existing = replacementOf(w.ledger, r.key)
    if (existing !== undefined) {
      if (r.notice?.kind === 'rebalance' && r.state === 'ready' && existing.state === 'ready') {
        const how = drain(w, r.key, memberOf(c.index, r), c.policy.burst, `${noticeText(r)}: replacement ${existing.key} is ready`)
        w.notes.push(`${how} ${r.key} (rebalance: replacement ${existing.key} ready)`)
        w.causes.add('spot_notice')
      }
      continue
    }
    const alloc = allocate(1, placementOf(w, c), { away: { provider: r.provider, region: r.offering.region } }, heldOf(w.ledger), limits)
    const slot = alloc.slots[0]
    if (slot === undefined) {
      w.notes.push(`no replacement for ${r.key} yet (${noticeText(r)}): ${alloc.reason}`)
      continue
    }
    const key = `${tick.id}-${tick.ordinal++}`
    const reason = `${noticeText(r)}: replacement${slot.fallback ? '; on-demand fallback: spot unavailable' : ''}`
    emit(w, { type: 'instance.intent', key, decisionId: tick.id, offering: slot.offering, pricePerHour: slot.offering.pricePerHour, fallback: slot.fallback, replaces: r.key, reason })
    launch(w, key, slot.offering, slot.fallbacks, reason)
    w.notes.push(`launch ${key} to replace ${r.key} (${describeSlots([slot])})`)
    w.causes.add('spot_notice')
  }
}
