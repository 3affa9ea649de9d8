/**
 * The data the leader's pure logic works on: the policy (mapped from the
 * validated config), what was observed, the requests, and what comes out
 * (actions, answers). Plain interfaces, no behaviour; durations are
 * milliseconds, money is dollars per hour.
 */
import type { Instance, Offering, ProviderKind, ReplicaSpec } from '../../../providers/types.ts'

// ---------------------------------------------------------------------------
// Policy

/** spawn's burst policy (`burst:`), same names and meaning, plus the leader's own timings. */
export interface BurstPolicy {
  /** `burst.mode`: manual bursts only, or the autoscaler too. */
  mode: 'manual' | 'auto'
  /** `burst.queue_depth_threshold`: scale up when the mesh-wide queue is deeper (auto). */
  queueDepthThreshold: number
  /** `burst.min_cloud_instances`: burst instances kept warm (auto). */
  minCloudInstances: number
  /** `burst.max_cloud_instances`: burst instances at most, whatever provider they come from. */
  maxCloudInstances: number
  /** `burst.cost_budget`: $/h for all burst capacity together (pending included); never exceeded. */
  costBudget: number
  /** `burst.scale_down_delay`: the queue must have stayed shallow this long before scaling down (auto). */
  scaleDownDelayMs: number
  /** `burst.check_interval`: how often the shell calls decide(). */
  checkIntervalMs: number
  /** `burst.ttl`: a burst instance is retired after this long; 0 = never. */
  ttlMs: number
  /** `burst.idle_timeout`: a burst instance without work this long is retired; 0 = never. */
  idleTimeoutMs: number
  /** A launch whose node has not become ready by then has failed and is terminated. */
  launchTimeoutMs: number
  /** A draining member still busy after this long is terminated anyway. */
  drainTimeoutMs: number
  /** A burst member dead, left the mesh or absent longer than this is terminated (no orphaned spend). */
  memberGraceMs: number
  /** A launched instance missing from its provider's list() only counts as vanished after this long (list is eventually consistent). */
  vanishGraceMs: number
  /** A launch or terminate not yet confirmed is issued again after this long (calls are idempotent). */
  actionRetryMs: number
  /** An offering that answered InsufficientCapacity is skipped this long (Karpenter's ICE cache: 3 min). */
  capacityErrorTtlMs: number
  /** A spot offering (and its zone) interrupted this recently is placed last (SkyServe's dynamic-fallback placer). */
  preemptionMemoryMs: number
}

/** SkyServe's replica_policy (`service:`), same names and meaning. */
export interface ServicePolicy {
  minReplicas: number
  maxReplicas: number
  targetQpsPerReplica: number
  upscaleDelayMs: number
  downscaleDelayMs: number
  /** Replicas kept on on-demand capacity at all times (always-on members, pool hosts and local processes count). */
  baseOndemandFallbackReplicas: number
  /** Use on-demand when spot cannot be had; switch back to spot when it can. */
  dynamicOndemandFallback: boolean
}

/** One `providers:` entry, as the leader needs it. */
export interface ProviderPolicy {
  name: string
  kind: ProviderKind
  /** `providers[].max_instances`. */
  maxInstances: number
  /** `providers[].cost_per_hour`: what the provider's offerings charge (local, ssh); informational here. */
  costPerHour: number
  /** Which market this provider launches on by default: true for an aws provider with `spot: true`. */
  spot: boolean
  /**
   * `providers[aws].spot_recovery`: where a replacement for an interrupted
   * instance goes first: the same region's other zones (FAILOVER) or another
   * region (EAGER_NEXT_REGION). FAILOVER for providers without regions.
   */
  spotRecovery: 'FAILOVER' | 'EAGER_NEXT_REGION'
  /** `providers[aws].unavailable_for`: how long an offering refused for capacity is skipped; absent: the leader's capacityErrorTtlMs. */
  unavailableForMs?: number
  /** What a launched node serves. */
  replica: ReplicaSpec
  /** Merged into each launched node's meshd config. */
  config: Record<string, unknown>
}

export interface Policy {
  cluster: string
  burst: BurstPolicy
  service: ServicePolicy
  /** Cheapest first, as in the config; the order breaks price ties. */
  providers: ProviderPolicy[]
}

// ---------------------------------------------------------------------------
// Observations

export type MemberLiveness = 'alive' | 'suspect' | 'dead' | 'left'

/** A member as the leader's member table sees it (see observe.ts for the mapping). */
export interface MemberObservation {
  id: string
  name: string
  state: MemberLiveness
  /** The member said it is draining (its heartbeat state). */
  draining: boolean
  /** When its newest heartbeat arrived (leader's clock). */
  lastSeenAt: number
  provider: string
  region: string
  zone?: string
  spot: boolean
  costPerHour: number
  voter: boolean
  /** Set on burst members: which instance it is. `key` ties it to the ledger. */
  instance: { provider: string, id: string, key?: string, launchedAt?: number } | null
  /** The provider warned that it will be taken away (heartbeat `notice`): rebalance (at = noticed) or interruption (at = when it goes). */
  notice?: { kind: 'rebalance' | 'interruption', at: number }
  replica: { ready: boolean, models: string[], slots: number, inflight: number, queued: number, qps: number } | null
}

/** One provider's list(), as it was when `at`. Only successful lists are passed in. */
export interface ProviderListing {
  provider: string
  at: number
  instances: Instance[]
}

/** `meshd burst --count N [--provider P] [--spot | --on-demand]`. */
export interface BurstRequest {
  /** Chosen by the CLI; a retried request with the same id gets the recorded answer. */
  id: string
  count: number
  provider?: string
  /** true: spot only; false: on-demand only; absent: the policy decides. */
  spot?: boolean
}

/** `meshd burst --terminate [--count N | --all]`. */
export interface TerminateRequest {
  id: string
  count?: number
  all?: boolean
  provider?: string
}

export interface Observations {
  /** The leader's current term (decision ids and ledger entries carry it). */
  term: number
  members: MemberObservation[]
  /** Providers whose list() succeeded since the last call; the others are not reconciled this time. */
  listings: ProviderListing[]
  burst: BurstRequest[]
  terminate: TerminateRequest[]
}

// ---------------------------------------------------------------------------
// Outputs

/** The `meshd burst --json` document (INTERFACE.md), plus the request id. */
export interface Answer {
  id: string
  requested: number
  granted: number
  decision: 'granted' | 'cut' | 'refused'
  reason: string
  /** The provider used; several joined by "+" when the grant spans providers; null when none. */
  provider: string | null
  /** Idempotency keys of the instances launched (or drained, for --terminate). */
  instances: string[]
}

export interface LaunchAction {
  op: 'launch'
  key: string
  offering: Offering
  /**
   * Offerings of the same provider the launcher may try instead, in order, when
   * `offering` answers InsufficientCapacity. None costs more than the price the
   * budget reserved for this key, so the budget holds whichever succeeds.
   */
  fallbacks: Offering[]
  reason: string
}

export interface DrainAction {
  op: 'drain'
  key: string
  /** The member to tell (its peer id), when known. */
  member: string | null
  reason: string
}

export interface TerminateAction {
  op: 'terminate'
  key: string
  provider: string
  /** The provider's instance id; null when the launch has not reported one (look it up by key in list()). */
  id: string | null
  reason: string
}

export type Action = LaunchAction | DrainAction | TerminateAction

/**
 * Why a decision came out as it did, as one of a fixed set (the reason text
 * in the ledger and the log says the same in words): a metric label must not
 * take free text.
 */
export const DECISION_REASONS = [
  /** Granted in full, within every limit. */
  'within_limits',
  /** The limit that stopped it (or, on a tick, shed instances over it). */
  'cost_budget', 'max_cloud_instances', 'max_instances',
  /** No provider, or no offering available or with capacity left. */
  'no_offering',
  /** A count out of range, an unknown provider. */
  'invalid_request',
  /** A terminate with fewer (or no) burst instances live than asked. */
  'nothing_to_terminate',
  /** A terminate granted as asked. */
  'requested',
  /** Ticks: a replacement for an instance its provider warned about (spot interruption, rebalance); the autoscaler launched or drained; a spot replacement for an on-demand fallback; anything else the leader keeps up (reconciliation, lifecycle, prices). */
  'spot_notice', 'autoscale', 'spot_return', 'upkeep'
] as const
export type DecisionReason = typeof DECISION_REASONS[number]

/** The outcome of a recorded decision: a request's answer, or `acted` for one of the leader's own ticks. */
export type DecisionOutcome = Answer['decision'] | 'acted'

/** One recorded decision, as metrics count it. */
export interface DecisionTally {
  kind: 'burst' | 'terminate' | 'tick'
  outcome: DecisionOutcome
  reason: DecisionReason
}
