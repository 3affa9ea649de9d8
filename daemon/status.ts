/**
 * The `meshd status --json` document (INTERFACE.md's minimum shape, plus
 * fields operators asked SkyServe's status for: load, version, draining).
 */
import type { Member } from '../mesh/membership/table.ts'
import type { MemberState } from '../mesh/membership/suspicion.ts'

export interface MemberStatus {
  id: string
  name: string
  state: MemberState
  voter: boolean
  provider: string
  region: string
  zone?: string
  spot: boolean
  cost_per_hour: number
  draining: boolean
  replica: { ready: boolean, models: string[], slots: number, inflight: number, queued: number, qps: number } | null
  load: { cpu: number, mem: number }
  addrs: string[]
  http: string | null
  last_seen_ms: number
  version: string
  burst?: true
  instance?: { provider: string, id: string, launched_at: number }
}

export interface StatusDocument {
  self: string
  name: string
  cluster: string
  leader: string | null
  term: number
  members: MemberStatus[]
  election?: Record<string, unknown>
  budget?: { cost_budget: number, spend_per_hour: number, spend_today?: number, spend_month?: number }
}

export function memberStatus (m: Member, now: number): MemberStatus {
  const hb = m.heartbeat
  const out: MemberStatus = {
    id: m.id,
    name: hb.name,
    state: m.state,
    voter: hb.voter,
    provider: hb.provider,
    region: hb.region,
    spot: hb.spot,
    cost_per_hour: hb.cost_per_hour,
    draining: hb.state === 'draining',
    replica: hb.replica === null
      ? null
      : { ready: hb.replica.ready, models: hb.replica.models, slots: hb.replica.slots, inflight: hb.replica.inflight, queued: hb.replica.queued, qps: hb.replica.qps },
    load: hb.load,
    addrs: hb.addrs,
    http: hb.http,
    last_seen_ms: Math.max(0, now - m.liveness.heardAt),
    version: hb.version
  }
  if (hb.zone !== undefined) out.zone = hb.zone
  if (hb.instance !== null) {
    out.burst = true
    out.instance = { provider: hb.instance.provider, id: hb.instance.id, launched_at: hb.instance.launched_at }
  }
  return out
}

/** Members sorted for people: voters first, then by name. */
export function sortMembers (ms: MemberStatus[]): MemberStatus[] {
  return ms.sort((a, b) => (a.burst === b.burst ? 0 : a.burst === true ? 1 : -1) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
}
