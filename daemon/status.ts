/**
 * The `meshd status --json` document (INTERFACE.md's minimum shape, plus
 * fields operators asked SkyServe's status for: load, version, draining).
 */
import type { Member } from '../mesh/membership/table.ts'
import type { MemberState } from '../mesh/membership/suspicion.ts'
import { nameClashes } from '../mesh/membership/names.ts'

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
  /** The provider warned that this member will be taken away (EC2 spot: a rebalance recommendation, or an interruption at `at`). */
  notice?: { kind: 'rebalance' | 'interruption', at: number }
  /**
   * Released: it announced its departure (`left`), or it is a burst member
   * that is no longer alive and whose instance the ledger has terminated (or
   * is terminating).
   * Such a member is out of `status` (shown with --all) and costs nothing:
   * its cost_per_hour reads 0.
   */
  released?: Released
  /** Other members around (alive or suspect) with the same name, by peer id: names should be unique (mesh/membership/names.ts). */
  same_name_as?: string[]
}

export type Released = 'left' | 'terminated'

export interface StatusDocument {
  self: string
  name: string
  cluster: string
  leader: string | null
  term: number
  /** The members `meshd status` shows: released ones only with --all. */
  members: MemberStatus[]
  /** Without --all: the released members left out of `members`, each with its state. */
  released?: MemberStatus[]
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
    // A member drained by the leader says so in its replica's load only (older nodes).
    draining: hb.state === 'draining' || (hb.replica?.draining ?? false),
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
  if (hb.notice !== undefined) out.notice = { kind: hb.notice.kind, at: hb.notice.at }
  return out
}

/** What the ledger says of a burst instance (its record's state), if it knows it. */
export type InstanceLookup = (instance: { provider: string, id: string, key?: string }) => string | undefined

/**
 * Ledger states in which the leader has let an instance go: terminating (the
 * provider was told to delete it; the record turns terminated once the
 * provider's list confirms, up to vanish_grace after launch), terminated, or
 * failed. The budget line still counts what may bill until then.
 */
const LET_GO = new Set(['terminating', 'terminated', 'failed'])

/**
 * Pure: whether a member was released. A member that left says so itself; a
 * burst member is released once the ledger has let its instance go and the
 * member is not alive (a live one is shown whatever the ledger says, so a
 * node that outlived its termination is not hidden).
 */
export function releasedBy (m: Pick<Member, 'state' | 'heartbeat'>, lookup: InstanceLookup): Released | null {
  if (m.state === 'left') return 'left'
  const inst = m.heartbeat.instance
  if (inst === null || m.state === 'alive') return null
  const state = lookup(inst)
  return state !== undefined && LET_GO.has(state) ? 'terminated' : null
}

/**
 * The members of the status document: every member with its state, the
 * released ones marked and costing 0; without `all`, the released ones go to
 * `released` and the rest to `members` (what the table shows and counts).
 */
export function statusMembers (ms: Iterable<Member>, now: number, lookup: InstanceLookup, all: boolean): { members: MemberStatus[], released?: MemberStatus[] } {
  const shown: MemberStatus[] = []
  const released: MemberStatus[] = []
  const list = [...ms]
  const clashes = new Map(nameClashes(list).flatMap((c) => c.ids.map((id) => [id, c.ids.filter((x) => x !== id)] as const)))
  for (const m of list) {
    const s = memberStatus(m, now)
    const others = clashes.get(m.id)
    if (others !== undefined) s.same_name_as = others
    const why = releasedBy(m, lookup)
    if (why === null) { shown.push(s); continue }
    s.released = why
    s.cost_per_hour = 0
    ;(all ? shown : released).push(s)
  }
  return all ? { members: sortMembers(shown) } : { members: sortMembers(shown), released: sortMembers(released) }
}

/** Members sorted for people: voters first, then by name. */
export function sortMembers (ms: MemberStatus[]): MemberStatus[] {
  return ms.sort((a, b) => (a.burst === b.burst ? 0 : a.burst === true ? 1 : -1) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
}
