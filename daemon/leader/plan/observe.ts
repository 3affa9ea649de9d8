/**
 * Observations of members, pure: the mapping from the member table to what
 * decide() reads, and the lookups that tie a burst member to its ledger
 * record (by idempotency key, else by provider and instance id).
 */
import type { Member } from '../../../mesh/membership/table.ts'
import type { InstanceRecord } from '../ledger/ledger.ts'
import type { MemberObservation } from './types.ts'

/** A member table entry as decide() sees it. */
export function observeMember (m: Member): MemberObservation {
  const hb = m.heartbeat
  const out: MemberObservation = {
    id: m.id,
    name: hb.name,
    state: m.state,
    draining: hb.state === 'draining' || (hb.replica?.draining ?? false),
    lastSeenAt: m.liveness.heardAt,
    provider: hb.provider,
    region: hb.region,
    spot: hb.spot,
    costPerHour: hb.cost_per_hour,
    voter: hb.voter,
    instance: hb.instance === null ? null : { provider: hb.instance.provider, id: hb.instance.id, launchedAt: hb.instance.launched_at, ...(hb.instance.key === undefined ? {} : { key: hb.instance.key }) },
    replica: hb.replica === null
      ? null
      : { ready: hb.replica.ready, models: hb.replica.models, slots: hb.replica.slots, inflight: hb.replica.inflight, queued: hb.replica.queued, qps: hb.replica.qps }
  }
  if (hb.zone !== undefined) out.zone = hb.zone
  if (hb.notice !== undefined) out.notice = { kind: hb.notice.kind, at: hb.notice.at }
  return out
}

export interface MemberIndex {
  byKey: Map<string, MemberObservation>
  byInstance: Map<string, MemberObservation>
}

function instanceKey (provider: string, id: string): string {
  return `${provider}\u0000${id}`
}

/**
 * Burst members by key and by instance. When one instance shows up as two
 * members (a restart under a new peer id), the freshest heartbeat wins.
 */
export function indexMembers (members: readonly MemberObservation[]): MemberIndex {
  const byKey = new Map<string, MemberObservation>()
  const byInstance = new Map<string, MemberObservation>()
  const fresher = (a: MemberObservation | undefined, b: MemberObservation): boolean => a === undefined || b.lastSeenAt > a.lastSeenAt
  for (const m of members) {
    if (m.instance === null) continue
    if (m.instance.key !== undefined && fresher(byKey.get(m.instance.key), m)) byKey.set(m.instance.key, m)
    const ik = instanceKey(m.instance.provider, m.instance.id)
    if (fresher(byInstance.get(ik), m)) byInstance.set(ik, m)
  }
  return { byKey, byInstance }
}

export function memberOf (index: MemberIndex, r: InstanceRecord): MemberObservation | undefined {
  return index.byKey.get(r.key) ?? (r.id === null ? undefined : index.byInstance.get(instanceKey(r.provider, r.id)))
}

/** Has work: something in flight or queued, or requests arriving. */
export function isBusy (m: MemberObservation): boolean {
  return m.replica !== null && (m.replica.inflight > 0 || m.replica.queued > 0 || m.replica.qps > 0)
}

/** Serving members that are not burst capacity: the always-on base. */
export function staticReplicas (members: readonly MemberObservation[]): MemberObservation[] {
  return members.filter((m) => m.instance === null && m.state === 'alive' && !m.draining && m.replica !== null && m.replica.ready)
}
