/**
 * Reconciliation against one provider's list(), pure. The provider's list is
 * the truth about what exists (and bills); the ledger is the truth about what
 * we meant. Where they differ:
 *
 * - listed, key unknown to the ledger: adopt it (a launch whose entries were
 *   lost with a leader, or one made by hand with our tag) — the budget counts
 *   it from now on, and sheds it if it does not fit;
 * - listed, key known without an id: record the launch (the launcher's entry
 *   was lost);
 * - listed, key known as finished: it bills, so it goes back to terminating;
 * - listed under a key that already has another instance: a second instance
 *   for one key, which idempotent creates should make impossible: terminate it;
 * - in the ledger with an id, not listed for longer than the grace period:
 *   vanished (spot reclaimed, deleted by hand, or our terminate completed).
 */
import { offeringId, type Instance, type Offering } from '../../../providers/types.ts'
import { keyPattern } from '../ledger/entries.ts'
import { mayBill, own, records, type LedgerState } from '../ledger/ledger.ts'
import type { ProviderListing, ProviderPolicy } from './types.ts'

export type ReconcileStep =
  | { do: 'adopt', key: string, instance: Instance, offering: Offering, reason: string }
  | { do: 'launched', key: string, instance: Instance, reason: string }
  | { do: 'reopen', key: string, instance: Instance, reason: string }
  | { do: 'duplicate', key: string, instance: Instance, reason: string }
  | { do: 'vanished', key: string, reason: string }

/** A ledger key for a listed instance: its own when it is a valid key, else a sanitised one. */
function keyFor (i: Instance): string {
  if (keyPattern.test(i.key)) return i.key
  let k = `${i.provider}:${i.id}`.replace(/[^A-Za-z0-9._:/@-]/g, '-')
  if (!/^[A-Za-z0-9]/.test(k)) k = `x${k}`
  return k.slice(0, 128)
}

/** The offering an instance runs on: the catalogue's when it is still offered, else rebuilt from the instance. */
function offeringOf (i: Instance, catalogue: readonly Offering[], provider: ProviderPolicy | undefined): Offering {
  const id = offeringId(i)
  const known = catalogue.find((o) => offeringId(o) === id)
  if (known !== undefined) return { ...known, pricePerHour: i.pricePerHour }
  const o: Offering = { provider: i.provider, kind: provider?.kind ?? 'fake', region: i.region, spot: i.spot, pricePerHour: i.pricePerHour, available: false }
  if (i.zone !== undefined) o.zone = i.zone
  if (i.instanceType !== undefined) o.instanceType = i.instanceType
  return o
}

export function reconcile (
  ledger: LedgerState,
  listing: ProviderListing,
  catalogue: readonly Offering[],
  provider: ProviderPolicy | undefined,
  vanishGraceMs: number
): ReconcileStep[] {
  const steps: ReconcileStep[] = []
  const listedIds = new Set<string>()
  const instances = [...listing.instances]
    .filter((i) => i.provider === listing.provider && i.state !== 'terminated')
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  for (const i of instances) {
    listedIds.add(i.id)
    const key = keyFor(i)
    const rec = own(ledger.instances, key)
    if (rec === undefined) {
      steps.push({ do: 'adopt', key, instance: i, offering: offeringOf(i, catalogue, provider), reason: `found in ${listing.provider}'s list with this cluster's tag, unknown to the ledger: adopted` })
    } else if (rec.id === null) {
      steps.push({ do: 'launched', key, instance: i, reason: `found in ${listing.provider}'s list as ${i.id}` })
    } else if (rec.id !== i.id) {
      steps.push({ do: 'duplicate', key, instance: i, reason: `a second instance ${i.id} for key ${key} (already ${rec.id}): terminate it` })
    } else if (!mayBill(rec)) {
      steps.push({ do: 'reopen', key, instance: i, reason: `still in ${listing.provider}'s list (${i.state}) after it was recorded ${rec.state}: terminate it` })
    }
  }
  for (const r of records(ledger)) {
    if (r.provider !== listing.provider || r.id === null || !mayBill(r) || listedIds.has(r.id)) continue
    const since = r.launchedAt ?? r.stateAt
    if (listing.at - since < vanishGraceMs) continue
    steps.push({
      do: 'vanished',
      key: r.key,
      reason: r.state === 'terminating' ? `terminate confirmed: ${r.id} gone from ${listing.provider}'s list` : `${r.id} gone from ${listing.provider}'s list (reclaimed, or deleted outside meshd)`
    })
  }
  return steps
}
