/**
 * The leader's policy, built from the validated config: the config schema
 * (daemon/config/schema.ts) is the one place defaults are written. Only the
 * timings the config has no key for yet are here, each saying why.
 * A test that needs the default policy parses an empty config section.
 */
import type { Config, ProviderConfig } from '../../config/schema.ts'
import type { Policy, ProviderPolicy } from './types.ts'

/** Timings the config has no key for yet; the shell may expose them later. */
export const LEADER_TIMINGS = {
  /** Booting a cloud VM, fetching meshd and a model, passing the readiness probe (SkyServe's initial_delay_seconds is 120 s alone). */
  launchTimeoutMs: 15 * 60_000,
  /** Long generations finish within a few minutes; SkyServe waits for in-flight requests similarly. */
  drainTimeoutMs: 5 * 60_000,
  /** Far above the failure detector's dead_after (10 heartbeats): a flapping link does not cost an instance. */
  memberGraceMs: 2 * 60_000,
  /** EC2's DescribeInstances is eventually consistent for about a minute after RunInstances. */
  vanishGraceMs: 2 * 60_000,
  /** A provider call that has not been confirmed in a minute is retried (all are idempotent). */
  actionRetryMs: 60_000,
  /** Karpenter keeps an offering that answered InsufficientCapacity out for 3 minutes. */
  capacityErrorTtlMs: 3 * 60_000,
  /**
   * SkyServe's dynamic-fallback placer keeps a preempted zone out until a
   * launch there succeeds; here it is ranked last for half an hour (spot
   * reclaims come in waves over minutes, and a zone that calmed down is
   * worth its price again).
   */
  preemptionMemoryMs: 30 * 60_000
} as const

export function providerPolicy (p: ProviderConfig): ProviderPolicy {
  const replica: ProviderPolicy['replica'] = { models: p.replica.models, slots: p.replica.slots, command: p.replica.command, sim: p.replica.sim }
  if (p.replica.url !== undefined) replica.url = p.replica.url
  return {
    name: p.name,
    kind: p.kind,
    maxInstances: p.max_instances,
    costPerHour: p.cost_per_hour,
    spot: p.kind === 'aws' ? p.spot : false,
    spotRecovery: p.kind === 'aws' ? p.spot_recovery : 'FAILOVER',
    ...(p.kind === 'aws' ? { unavailableForMs: p.unavailable_for } : {}),
    replica,
    config: p.config
  }
}

/** The policy for a validated config (durations are already milliseconds there). */
export function policyFromConfig (c: Config, overrides: Partial<typeof LEADER_TIMINGS> = {}): Policy {
  return {
    cluster: c.cluster,
    burst: {
      mode: c.burst.mode,
      queueDepthThreshold: c.burst.queue_depth_threshold,
      minCloudInstances: c.burst.min_cloud_instances,
      maxCloudInstances: c.burst.max_cloud_instances,
      costBudget: c.burst.cost_budget,
      scaleDownDelayMs: c.burst.scale_down_delay,
      checkIntervalMs: c.burst.check_interval,
      ttlMs: c.burst.ttl,
      idleTimeoutMs: c.burst.idle_timeout,
      ...LEADER_TIMINGS,
      ...overrides
    },
    service: {
      minReplicas: c.service.min_replicas,
      maxReplicas: c.service.max_replicas,
      targetQpsPerReplica: c.service.target_qps_per_replica,
      upscaleDelayMs: c.service.upscale_delay_seconds * 1000,
      downscaleDelayMs: c.service.downscale_delay_seconds * 1000,
      baseOndemandFallbackReplicas: c.service.base_ondemand_fallback_replicas,
      dynamicOndemandFallback: c.service.dynamic_ondemand_fallback
    },
    providers: c.providers.map(providerPolicy)
  }
}
