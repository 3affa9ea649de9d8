/**
 * One launch as one CreateFleet call (Type: instant, one instance), pure:
 * the request and what its answer means.
 *
 * Overrides: every configured instance type in the offering's zone, on the
 * offering's market, whose price in force is at most the offering's (the
 * budget reserved that much) and that EC2 has not just refused; EC2 picks
 * among them (spot: price-capacity-optimized, on-demand: lowest-price), so
 * one call covers a zone as Karpenter's does.
 *
 * An instant fleet says "no capacity" in `Errors` with HTTP 200 and no
 * instance: refusals are read from there, per (type, zone, market).
 */
import { createHash } from 'node:crypto'
import type { CreateFleetCommandInput, CreateFleetCommandOutput, FleetLaunchTemplateOverridesRequest, Tag, _InstanceType } from '@aws-sdk/client-ec2'
import type { Offering } from '../types.ts'
import { TAGS } from './boot-spec.ts'
import { isCapacityCode, isQuotaCode } from './errors.ts'

export interface OverrideChoice {
  instanceType: string
  pricePerHour: number
}

/**
 * The instance types the fleet may pick in the offering's zone: the
 * offering's own type first, then every other configured type no dearer
 * and available (both judged on the offering's market).
 */
export function fleetTypes (offering: Offering, types: readonly string[], priceOf: (type: string) => number | null, available: (type: string) => boolean): OverrideChoice[] {
  const out: OverrideChoice[] = [{ instanceType: offering.instanceType!, pricePerHour: offering.pricePerHour }]
  for (const t of types) {
    if (t === offering.instanceType) continue
    const p = priceOf(t)
    if (p === null || p > offering.pricePerHour || !available(t)) continue
    out.push({ instanceType: t, pricePerHour: p })
  }
  return out
}

/**
 * The ClientToken of a launch: the leader's key, made specific to the
 * offering tried. EC2 answers IdempotentParameterMismatch when one token
 * comes again with other parameters, and the launcher tries a key's
 * fallbacks (another zone, another region) under the same key: one token
 * per (key, offering) keeps each of those idempotent, retries and a new
 * leader's re-issue included (same key, same offering, same token). The key
 * itself is on the instance as the meshd:key tag. At most 64 ASCII characters.
 */
export function clientToken (key: string, offering: Pick<Offering, 'region' | 'zone' | 'instanceType' | 'spot'>): string {
  const where = `${offering.region}/${offering.zone ?? '-'}/${offering.instanceType ?? '-'}/${offering.spot ? 'spot' : 'on-demand'}`
  const h = createHash('sha256').update(where).digest('hex').slice(0, 10)
  const safe = /^[\x21-\x7e]{1,53}$/.test(key) ? key : createHash('sha256').update(key).digest('hex').slice(0, 40)
  return `${safe}-${h}`
}

/** The decision id in a key `<decision>-<ordinal>` (the leader's form); the key itself otherwise. */
export function decisionOf (key: string): string {
  const i = key.lastIndexOf('-')
  return i > 0 && /^\d+$/.test(key.slice(i + 1)) ? key.slice(0, i) : key
}

export interface FleetRequest {
  cluster: string
  provider: string
  key: string
  nodeName: string
  offering: Offering
  types: readonly OverrideChoice[]
  /** The template: meshd's by name, or the user's by id. */
  template: { name: string } | { id: string, version: string }
  /** An AMI replacing the template's (a user template with image_id set). */
  imageId?: string
  subnetId?: string
}

export function launchTags (r: Pick<FleetRequest, 'cluster' | 'provider' | 'key' | 'nodeName' | 'offering'>): Tag[] {
  return [
    { Key: TAGS.cluster, Value: r.cluster },
    { Key: TAGS.key, Value: r.key },
    { Key: TAGS.decision, Value: decisionOf(r.key) },
    { Key: TAGS.provider, Value: r.provider },
    { Key: TAGS.price, Value: String(r.offering.pricePerHour) },
    { Key: 'Name', Value: r.nodeName }
  ]
}

export function createFleetInput (r: FleetRequest): CreateFleetCommandInput {
  const spot = r.offering.spot
  const overrides: FleetLaunchTemplateOverridesRequest[] = r.types.map((t) => {
    const o: FleetLaunchTemplateOverridesRequest = { InstanceType: t.instanceType as _InstanceType, AvailabilityZone: r.offering.zone! }
    if (r.subnetId !== undefined) o.SubnetId = r.subnetId
    if (r.imageId !== undefined) o.ImageId = r.imageId
    return o
  })
  const tags = launchTags(r)
  return {
    Type: 'instant',
    ClientToken: clientToken(r.key, r.offering),
    TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: spot ? 'spot' : 'on-demand' },
    ...(spot ? { SpotOptions: { AllocationStrategy: 'price-capacity-optimized' } } : { OnDemandOptions: { AllocationStrategy: 'lowest-price' } }),
    LaunchTemplateConfigs: [{
      LaunchTemplateSpecification: 'name' in r.template
        ? { LaunchTemplateName: r.template.name, Version: '$Latest' }
        : { LaunchTemplateId: r.template.id, Version: r.template.version },
      Overrides: overrides
    }],
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
      { ResourceType: 'volume', Tags: tags }
    ]
  }
}

export interface Refusal {
  instanceType: string
  zone: string
  spot: boolean
  code: string
  message: string
}

export type FleetOutcome =
  | { kind: 'launched', id: string, instanceType: string, zone: string, spot: boolean }
  /** No instance: `refusals` are capacity codes per override, `quota` account limits, `other` anything else. */
  | { kind: 'none', refusals: Refusal[], quota: Refusal[], other: Refusal[] }

/** What the instant fleet's answer says; `offering` fills in what an error entry leaves out. */
export function fleetOutcome (out: Pick<CreateFleetCommandOutput, 'Instances' | 'Errors'>, offering: Offering): FleetOutcome {
  for (const inst of out.Instances ?? []) {
    const id = inst.InstanceIds?.[0]
    if (id === undefined) continue
    return {
      kind: 'launched',
      id,
      instanceType: inst.InstanceType ?? inst.LaunchTemplateAndOverrides?.Overrides?.InstanceType ?? offering.instanceType ?? '',
      zone: inst.LaunchTemplateAndOverrides?.Overrides?.AvailabilityZone ?? offering.zone ?? '',
      spot: inst.Lifecycle === undefined ? offering.spot : inst.Lifecycle === 'spot'
    }
  }
  const refusals: Refusal[] = []
  const quota: Refusal[] = []
  const other: Refusal[] = []
  for (const e of out.Errors ?? []) {
    const r: Refusal = {
      instanceType: e.LaunchTemplateAndOverrides?.Overrides?.InstanceType ?? offering.instanceType ?? '',
      zone: e.LaunchTemplateAndOverrides?.Overrides?.AvailabilityZone ?? offering.zone ?? '',
      spot: e.Lifecycle === undefined ? offering.spot : e.Lifecycle === 'spot',
      code: e.ErrorCode ?? 'UnknownError',
      message: e.ErrorMessage ?? ''
    }
    if (isCapacityCode(r.code)) refusals.push(r)
    else if (isQuotaCode(r.code)) quota.push(r)
    else other.push(r)
  }
  return { kind: 'none', refusals, quota, other }
}

export function describeRefusal (r: Refusal): string {
  return `${r.instanceType} ${r.zone} ${r.spot ? 'spot' : 'on-demand'}: ${r.code}${r.message === '' ? '' : ` (${r.message})`}`
}
