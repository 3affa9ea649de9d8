/**
 * EC2's view of an instance as the provider's Instance, pure. The key comes
 * from the meshd:key tag (or `<provider>:<id>` for an instance tagged with
 * the cluster by hand, so the leader can still adopt it), the price from
 * meshd:price (what the leader charged when it launched it) or else the
 * price in force for its type, zone and market.
 */
import type { Instance as Ec2Instance, Filter } from '@aws-sdk/client-ec2'
import type { Instance, InstanceState } from '../types.ts'
import { TAGS } from './boot-spec.ts'

/** Every state but terminated: what list() asks for. */
export const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] as const

/** EC2's instance state as the provider's: a stopped instance is no use to the mesh and is being let go. */
export function stateOf (ec2: string | undefined): InstanceState {
  switch (ec2) {
    case 'pending': return 'pending'
    case 'running': return 'running'
    case 'stopping':
    case 'stopped':
    case 'shutting-down': return 'stopping'
    default: return 'terminated'
  }
}

export function tagOf (i: Pick<Ec2Instance, 'Tags'>, key: string): string | undefined {
  return i.Tags?.find((t) => t.Key === key)?.Value
}

/** list()'s filters: this cluster's tag, every state but terminated. */
export function clusterFilters (cluster: string): Filter[] {
  return [
    { Name: `tag:${TAGS.cluster}`, Values: [cluster] },
    { Name: 'instance-state-name', Values: [...LIVE_STATES] }
  ]
}

/** The idempotency look-up: the key's tag in this cluster, every state (terminated too). */
export function keyFilters (cluster: string, key: string): Filter[] {
  return [
    { Name: `tag:${TAGS.cluster}`, Values: [cluster] },
    { Name: `tag:${TAGS.key}`, Values: [key] }
  ]
}

/**
 * Whether this provider owns the instance: tagged with its name, or with no
 * provider tag at all (made by hand for the cluster). Another aws provider
 * of the same cluster lists its own.
 */
export function ownedBy (i: Pick<Ec2Instance, 'Tags'>, provider: string): boolean {
  const p = tagOf(i, TAGS.provider)
  return p === undefined || p === provider
}

export function toInstance (i: Ec2Instance, provider: string, region: string, priceInForce: (type: string, zone: string, spot: boolean) => number | null): Instance {
  const id = i.InstanceId ?? ''
  const zone = i.Placement?.AvailabilityZone
  const spot = i.InstanceLifecycle === 'spot'
  const type = i.InstanceType as string | undefined
  const tagged = Number(tagOf(i, TAGS.price))
  const price = tagOf(i, TAGS.price) !== undefined && Number.isFinite(tagged) && tagged >= 0
    ? tagged
    : (type === undefined || zone === undefined ? null : priceInForce(type, zone, spot)) ?? 0
  const out: Instance = {
    id,
    key: tagOf(i, TAGS.key) ?? `${provider}:${id}`,
    provider,
    region,
    spot,
    state: stateOf(i.State?.Name),
    launchedAt: i.LaunchTime instanceof Date ? i.LaunchTime.getTime() : 0,
    pricePerHour: price
  }
  if (zone !== undefined) out.zone = zone
  if (type !== undefined) out.instanceType = type
  if (i.PrivateIpAddress !== undefined) out.address = i.PrivateIpAddress
  return out
}
