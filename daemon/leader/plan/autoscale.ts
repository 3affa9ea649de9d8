/**
 * The autoscaler (`burst.mode: auto`), pure, in the shape of the HPA and
 * SkyServe's autoscaler: observations and history in, how many burst
 * instances to have out, with its reason.
 *
 * Two signals, each under its users' names and meaning:
 *
 * - SkyServe's request rate: replicas = ceil(mesh qps / target_qps_per_replica),
 *   clipped to [min_replicas, max_replicas]; within a ±10% tolerance band of
 *   the current replicas nothing changes (the HPA's tolerance).
 * - spawn's queue depth: when the mesh-wide queue is deeper than
 *   queue_depth_threshold, replicas = queue / per_replica + 1, where spawn's
 *   "~10 jobs per instance" becomes the providers' replica slots.
 *
 * The larger wins; the always-on members serve first, so burst instances =
 * replicas − always-on, clipped to [min_cloud_instances, max_cloud_instances].
 *
 * Stabilisation: scale up to the lowest recommendation of the last
 * upscale_delay_seconds (quickly when that is short), at most 10 per tick
 * (spawn); scale down to the highest recommendation of the last
 * max(downscale_delay_seconds, scale_down_delay), only once this leader has
 * watched that long and the queue has stayed below half the threshold for
 * scale_down_delay (spawn), at most 5 per tick. One direction per tick.
 */
import type { Recommendation } from './memory.ts'
import { staticReplicas } from './observe.ts'
import type { MemberObservation, Policy } from './types.ts'
import { formatDuration } from '../../config/duration.ts'

/** spawn: at most this many launched per cycle. */
const MAX_UP_PER_TICK = 10
/** spawn: at most this many terminated per cycle. */
const MAX_DOWN_PER_TICK = 5
/** The HPA's tolerance: within ±10% of target, no change. */
const TOLERANCE = 0.1
/** spawn's per-instance concurrency when no provider says how many slots a replica has. */
const DEFAULT_PER_REPLICA = 10

export interface AutoInput {
  now: number
  policy: Policy
  members: readonly MemberObservation[]
  /** Burst instances serving or on their way (provisioning, starting, ready; not draining). */
  burst: number
  /** When this leader started watching (LeaderMemory.since). */
  since: number
  recommendations: readonly Recommendation[]
  shallowSince: number | null
}

export interface AutoDecision {
  /** Burst instances to have after this tick. */
  desired: number
  /** Burst instances the signals want now, before stabilisation. */
  raw: number
  direction: 'up' | 'down' | 'hold'
  reason: string
  recommendations: Recommendation[]
  shallowSince: number | null
}

function clamp (x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x))
}

export function perReplica (policy: Policy): number {
  const slots = policy.providers.map((p) => p.replica.slots).filter((s) => s > 0)
  return slots.length === 0 ? DEFAULT_PER_REPLICA : Math.max(1, Math.round(slots.reduce((a, b) => a + b, 0) / slots.length))
}

export function autoscale (input: AutoInput): AutoDecision {
  const { now, policy } = input
  const s = policy.service
  const b = policy.burst
  const alive = input.members.filter((m) => m.state === 'alive' && m.replica !== null)
  const qps = alive.reduce((a, m) => a + (m.replica?.qps ?? 0), 0)
  const queue = alive.reduce((a, m) => a + (m.replica?.queued ?? 0), 0)
  const statics = staticReplicas(input.members).length
  const current = statics + input.burst

  // SkyServe: the request rate.
  let byQps = s.targetQpsPerReplica > 0 ? Math.ceil(qps / s.targetQpsPerReplica) : 0
  if (current > 0 && s.targetQpsPerReplica > 0 && Math.abs(qps / (current * s.targetQpsPerReplica) - 1) <= TOLERANCE) byQps = current
  byQps = clamp(byQps, s.minReplicas, s.maxReplicas)
  // spawn: the queue.
  const per = perReplica(policy)
  const byQueue = queue > b.queueDepthThreshold ? Math.floor(queue / per) + 1 : 0
  const replicas = Math.min(s.maxReplicas, Math.max(byQps, byQueue))
  const raw = clamp(replicas - statics, b.minCloudInstances, b.maxCloudInstances)

  const upWindow = s.upscaleDelayMs
  const downWindow = Math.max(s.downscaleDelayMs, b.scaleDownDelayMs)
  const keepFrom = now - Math.max(upWindow, downWindow)
  const recommendations = [...input.recommendations.filter((r) => r.at > keepFrom && r.at < now), { at: now, desired: raw }]
  const shallowSince = queue < b.queueDepthThreshold / 2 ? (input.shallowSince ?? now) : null

  const signals = `${qps.toFixed(1)} qps at target_qps_per_replica ${s.targetQpsPerReplica} → ${byQps} replicas; queue ${queue} (queue_depth_threshold ${b.queueDepthThreshold}${byQueue > 0 ? ` → ${byQueue} replicas` : ''}); ${statics} always-on → ${raw} burst wanted, ${input.burst} now`

  const upRec = Math.min(...recommendations.filter((r) => r.at >= now - upWindow).map((r) => r.desired))
  if (upRec > input.burst) {
    const desired = Math.min(upRec, input.burst + MAX_UP_PER_TICK)
    return { desired, raw, direction: 'up', reason: `auto: ${signals}: up ${desired - input.burst}${upWindow > 0 ? ` (lowest of the last ${formatDuration(upWindow)}: ${upRec})` : ''}`, recommendations, shallowSince }
  }
  const downRec = Math.max(...recommendations.filter((r) => r.at >= now - downWindow).map((r) => r.desired))
  if (downRec < input.burst) {
    if (now - input.since < downWindow) {
      return { desired: input.burst, raw, direction: 'hold', reason: `auto: ${signals}: hold (watching ${formatDuration(now - input.since)} of the ${formatDuration(downWindow)} window before scaling down)`, recommendations, shallowSince }
    }
    if (shallowSince === null || now - shallowSince < b.scaleDownDelayMs) {
      return { desired: input.burst, raw, direction: 'hold', reason: `auto: ${signals}: hold (queue not below ${b.queueDepthThreshold / 2} for scale_down_delay ${formatDuration(b.scaleDownDelayMs)})`, recommendations, shallowSince }
    }
    const desired = Math.max(downRec, input.burst - MAX_DOWN_PER_TICK)
    return { desired, raw, direction: 'down', reason: `auto: ${signals}: down ${input.burst - desired} (highest of the last ${formatDuration(downWindow)}: ${downRec})`, recommendations, shallowSince }
  }
  return { desired: input.burst, raw, direction: 'hold', reason: `auto: ${signals}: hold`, recommendations, shallowSince }
}
