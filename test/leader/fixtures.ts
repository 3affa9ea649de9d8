/**
 * Builders for the leader's tests: policies, offerings, members, requests.
 * Everything small and explicit, so a table row says what it means.
 */
import type { Offering } from '../../providers/types.ts'
import { configSchema } from '../../daemon/config/schema.ts'
import { policyFromConfig } from '../../daemon/leader/plan/policy.ts'
import { emptyLedger, rebuild, type LedgerState } from '../../daemon/leader/ledger/ledger.ts'
import type { LedgerEntry } from '../../daemon/leader/ledger/entries.ts'
import type { BurstPolicy, MemberObservation, Observations, Policy, ProviderPolicy, ServicePolicy } from '../../daemon/leader/plan/types.ts'

export const MIN = 60_000
export const HOUR = 3_600_000
/** 2026-03-15 12:00 UTC: far from day and month boundaries unless a test moves it. */
export const T0 = Date.UTC(2026, 2, 15, 12, 0, 0)

export function provider (name: string, kind: ProviderPolicy['kind'], over: Partial<ProviderPolicy> = {}): ProviderPolicy {
  return { name, kind, maxInstances: 20, costPerHour: 0, spot: false, spotRecovery: 'FAILOVER', replica: { models: ['m'], slots: 4, command: 'sim' }, config: {}, ...over }
}

/** The policy of a config that sets nothing: the config schema's defaults, the one place they are written. */
export function defaultPolicy (cluster = 'test'): Policy {
  return policyFromConfig(configSchema.parse({ cluster }))
}

export function policy (over: { burst?: Partial<BurstPolicy>, service?: Partial<ServicePolicy>, providers?: ProviderPolicy[] } = {}): Policy {
  const d = defaultPolicy()
  return {
    cluster: 'test',
    burst: { ...d.burst, ...over.burst },
    service: { ...d.service, ...over.service },
    providers: over.providers ?? [provider('workstation', 'local', { maxInstances: 4, costPerHour: 0.3 })]
  }
}

export function offering (providerName: string, kind: Offering['kind'], pricePerHour: number, over: Partial<Offering> = {}): Offering {
  return { provider: providerName, kind, region: kind === 'local' ? 'local' : kind === 'ssh' ? 'hel1' : 'us-east-1', spot: false, pricePerHour, available: true, ...over }
}

/** The usual mix: a free SSH pool of 2, a workstation at 0.30, AWS spot at 0.20 in two zones and on-demand at 0.60. */
export function hybrid (over: { burst?: Partial<BurstPolicy>, service?: Partial<ServicePolicy> } = {}): { policy: Policy, prices: Offering[] } {
  const p = policy({
    ...over,
    providers: [
      provider('hetzner', 'ssh', { maxInstances: 2 }),
      provider('workstation', 'local', { maxInstances: 4, costPerHour: 0.3 }),
      provider('aws', 'aws', { maxInstances: 10, spot: true })
    ]
  })
  const prices: Offering[] = [
    offering('hetzner', 'ssh', 0, { capacity: 2 }),
    offering('workstation', 'local', 0.3),
    offering('aws', 'aws', 0.2, { zone: 'us-east-1a', instanceType: 'c7a.4xlarge', spot: true }),
    offering('aws', 'aws', 0.2, { zone: 'us-east-1b', instanceType: 'c7a.4xlarge', spot: true }),
    offering('aws', 'aws', 0.6, { zone: 'us-east-1a', instanceType: 'c7a.4xlarge', spot: false }),
    offering('aws', 'aws', 0.6, { zone: 'us-east-1b', instanceType: 'c7a.4xlarge', spot: false })
  ]
  return { policy: p, prices }
}

export function member (id: string, over: Partial<MemberObservation> = {}): MemberObservation {
  return {
    id,
    name: id,
    state: 'alive',
    draining: false,
    lastSeenAt: T0,
    provider: 'static',
    region: 'hel1',
    spot: false,
    costPerHour: 0,
    voter: true,
    instance: null,
    replica: { ready: true, models: ['m'], slots: 4, inflight: 0, queued: 0, qps: 0 },
    ...over
  }
}

/** A burst member for a ledger key. */
export function burstMember (key: string, instanceId: string, providerName: string, over: Partial<MemberObservation> = {}): MemberObservation {
  return member(`peer-${key}`, { voter: false, provider: providerName, instance: { provider: providerName, id: instanceId, key, launchedAt: T0 }, ...over })
}

export function obs (over: Partial<Observations> = {}): Observations {
  return { term: 1, members: [], listings: [], burst: [], terminate: [], ...over }
}

export function ledgerOf (entries: LedgerEntry[]): LedgerState {
  return rebuild(entries, emptyLedger())
}

/** Entry stamps for hand-written entries. */
export function at (t: number, term = 1): { v: 1, term: number, at: number } {
  return { v: 1, term, at: t }
}
