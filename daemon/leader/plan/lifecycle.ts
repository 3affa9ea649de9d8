/**
 * The lifecycle of one burst instance, pure: given its ledger record, what its
 * member says and the time, the next steps. decide() turns steps into ledger
 * entries and actions.
 *
 *   provisioning ─launched─▶ starting ─ready─▶ ready ─drain─▶ draining ─▶ terminating ─▶ terminated
 *        │                      │                │                            ▲
 *        └──timeout─▶ failed    └──timeout─▶ failed ─────────────────────────┘
 *
 * - a launch not ready within `launchTimeoutMs` of its decision has failed;
 *   if anything exists it is terminated;
 * - `ttl` and `idle_timeout` drain a ready instance (the node also retires
 *   itself; this is the backstop);
 * - a member dead, or absent from the mesh, longer than `memberGraceMs`, or
 *   one that left, is terminated: no orphaned spend;
 * - draining ends when the member has nothing in flight or queued, or at its
 *   deadline;
 * - a launch, drain or terminate not yet confirmed is issued again every
 *   `actionRetryMs` (and at once by a new leader): all three are idempotent.
 */
import { formatDuration } from '../../config/duration.ts'
import type { InstanceRecord } from '../ledger/ledger.ts'
import type { Action, BurstPolicy, MemberObservation } from './types.ts'

export type Step =
  | { do: 'launched', id: string, launchedAt: number, reason: string }
  | { do: 'ready', reason: string }
  | { do: 'fail', reason: string }
  | { do: 'drain', reason: string }
  | { do: 'terminate', reason: string }
  | { do: 'gone', reason: string }
  | { do: 'reissue', op: Action['op'], reason: string }

export interface LifecycleView {
  now: number
  burst: BurstPolicy
  member: MemberObservation | undefined
  /** When its member was last seen alive (or the best lower bound the leader has). */
  lastSeen: number
  /** When its member last had work (or the best lower bound). */
  busyAt: number
  /** The action last issued for it and when, by this leader. */
  issued: { op: Action['op'], at: number } | undefined
  /** For a terminating record without an id: whether its provider's list() shows the key; null without a listing. */
  listed: boolean | null
  /** Auto mode at or below min_cloud_instances: idle ones are kept warm. */
  keepWarm: boolean
}

const fmt = formatDuration

function due (v: LifecycleView, op: Action['op']): boolean {
  return v.issued === undefined || v.issued.op !== op || v.now - v.issued.at >= v.burst.actionRetryMs
}

function isReady (m: MemberObservation | undefined): boolean {
  return m !== undefined && m.state === 'alive' && !m.draining && m.replica !== null && m.replica.ready
}

/** Left, or not alive for longer than the grace period: a reason to terminate, else null. */
function absence (r: InstanceRecord, v: LifecycleView): string | null {
  const m = v.member
  if (m !== undefined && m.state === 'left') return 'its member left the mesh'
  if (m !== undefined && m.state === 'alive') return null
  const away = v.now - v.lastSeen
  if (away < v.burst.memberGraceMs) return null
  const what = m === undefined ? 'absent from the mesh' : `${m.state}`
  return `member ${what} for ${fmt(away)} (grace ${fmt(v.burst.memberGraceMs)})${r.id === null ? '' : `, instance ${r.id}`}`
}

export function lifecycle (r: InstanceRecord, v: LifecycleView): Step[] {
  const m = v.member
  const b = v.burst
  const sinceDecided = v.now - r.intentAt
  switch (r.state) {
    case 'provisioning': {
      if (m?.instance != null) {
        const steps: Step[] = [{ do: 'launched', id: m.instance.id, launchedAt: m.instance.launchedAt ?? v.now, reason: `member ${m.name} joined as instance ${m.instance.id}` }]
        if (isReady(m)) steps.push({ do: 'ready', reason: `member ${m.name} is ready` })
        return steps
      }
      if (sinceDecided >= b.launchTimeoutMs) return [{ do: 'fail', reason: `launch timeout: no instance ${fmt(sinceDecided)} after the decision (launch timeout ${fmt(b.launchTimeoutMs)})` }]
      if (due(v, 'launch')) return [{ do: 'reissue', op: 'launch', reason: v.issued === undefined ? 'launch not confirmed yet: issue it (idempotent by key)' : 'launch not confirmed yet: issue it again' }]
      return []
    }
    case 'starting': {
      if (isReady(m)) return [{ do: 'ready', reason: `member ${m!.name} is ready` }]
      if (m !== undefined && m.state === 'left') return [{ do: 'terminate', reason: 'its member left the mesh before it was ready' }]
      if (sinceDecided >= b.launchTimeoutMs) return [{ do: 'fail', reason: `launch timeout: not ready ${fmt(sinceDecided)} after the decision (launch timeout ${fmt(b.launchTimeoutMs)})` }]
      if (m !== undefined && m.state === 'dead') {
        const gone = absence(r, v)
        if (gone !== null) return [{ do: 'terminate', reason: gone }]
      }
      return []
    }
    case 'ready': {
      const gone = absence(r, v)
      if (gone !== null) return [{ do: 'terminate', reason: gone }]
      if (b.ttlMs > 0 && r.launchedAt !== null && v.now - r.launchedAt >= b.ttlMs) return [{ do: 'drain', reason: `ttl ${fmt(b.ttlMs)} reached` }]
      if (b.idleTimeoutMs > 0 && !v.keepWarm && v.now - v.busyAt >= b.idleTimeoutMs) return [{ do: 'drain', reason: `idle for ${fmt(v.now - v.busyAt)} (idle_timeout ${fmt(b.idleTimeoutMs)})` }]
      if (m !== undefined && m.draining) return [{ do: 'drain', reason: `member ${m.name} is draining itself` }]
      return []
    }
    case 'draining': {
      const gone = absence(r, v)
      if (gone !== null) return [{ do: 'terminate', reason: `drained: ${gone}` }]
      if (m !== undefined && m.state === 'alive' && (m.replica === null || (m.replica.inflight === 0 && m.replica.queued === 0))) {
        return [{ do: 'terminate', reason: 'drained: nothing in flight' }]
      }
      if (r.drainDeadline !== null && v.now >= r.drainDeadline) {
        const busy = m?.replica == null ? '' : ` with ${m.replica.inflight} in flight`
        return [{ do: 'terminate', reason: `drain deadline passed${busy}` }]
      }
      if (due(v, 'drain')) return [{ do: 'reissue', op: 'drain', reason: 'drain not finished: ask again' }]
      return []
    }
    case 'terminating': {
      if (r.id === null && v.listed === false && sinceDecided >= b.launchTimeoutMs) {
        return [{ do: 'gone', reason: 'never launched: no instance with its key in the provider\'s list' }]
      }
      if (due(v, 'terminate')) return [{ do: 'reissue', op: 'terminate', reason: v.issued === undefined ? 'terminate not confirmed yet: issue it' : 'terminate not confirmed yet: issue it again' }]
      return []
    }
    case 'failed':
      return r.id !== null && r.endedAt === null ? [{ do: 'terminate', reason: `failed (${r.reason}) but instance ${r.id} exists` }] : []
    case 'terminated':
      return []
  }
}
