/**
 * `meshd providers check` for an aws provider: each EC2 action the provider
 * uses, asked with DryRun in each region. EC2 answers DryRunOperation (412)
 * when the call would have been allowed and UnauthorizedOperation (403) when
 * a permission is missing; nothing is created, listed or terminated.
 */
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  DeleteLaunchTemplateCommand,
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSpotPriceHistoryCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type _InstanceType
} from '@aws-sdk/client-ec2'
import { deadline, type Ec2Clients } from './clients.ts'
import { errorFacts, isUnavailable } from './errors.ts'
import { createFleetInput } from './fleet.ts'
import { templatePrefix } from './launch-template.ts'

export type PermissionResult = 'allowed' | 'missing' | 'unreachable' | 'error'

export interface PermissionRow {
  region: string
  /** `ec2:CreateFleet` ... */
  action: string
  result: PermissionResult
  /** EC2's code and message when not allowed. */
  detail: string | null
  ms: number
}

export interface CheckInput {
  name: string
  cluster: string
  regions: readonly string[]
  instanceTypes: readonly string[]
  spot: boolean
  /** region → AMI. */
  imageIds: Readonly<Record<string, string>>
  launchTemplate?: { id: string, version: string }
  /** region → zones from the config (else a zone named `<region>a` stands in for the dry run). */
  zones: Readonly<Record<string, readonly string[]>>
  clients: Ec2Clients
  timeoutMs?: number
}

/** Every action the provider calls, with a harmless DryRun request for it. */
function probes (i: CheckInput, region: string): Array<{ action: string, send: (c: EC2Client, o: { abortSignal: AbortSignal }) => Promise<unknown> }> {
  const zone = i.zones[region]?.[0] ?? `${region}a`
  const type = i.instanceTypes[0]!
  const meshdTemplate = i.launchTemplate === undefined
  const templateName = `${templatePrefix(i.cluster, i.name)}check`
  const out: Array<{ action: string, send: (c: EC2Client, o: { abortSignal: AbortSignal }) => Promise<unknown> }> = [
    { action: 'ec2:DescribeInstances', send: async (c, o) => await c.send(new DescribeInstancesCommand({ DryRun: true, MaxResults: 5 }), o) },
    { action: 'ec2:DescribeAvailabilityZones', send: async (c, o) => await c.send(new DescribeAvailabilityZonesCommand({ DryRun: true }), o) },
    { action: 'ec2:DescribeSpotPriceHistory', send: async (c, o) => await c.send(new DescribeSpotPriceHistoryCommand({ DryRun: true, InstanceTypes: [type as _InstanceType], ProductDescriptions: ['Linux/UNIX'], StartTime: new Date() }), o) },
    { action: 'ec2:DescribeLaunchTemplates', send: async (c, o) => await c.send(new DescribeLaunchTemplatesCommand({ DryRun: true }), o) },
    {
      action: 'ec2:CreateFleet',
      send: async (c, o) => await c.send(new CreateFleetCommand({
        ...createFleetInput({
          cluster: i.cluster,
          provider: i.name,
          key: 'meshd-permission-check-0',
          nodeName: 'meshd-permission-check',
          offering: { provider: i.name, kind: 'aws', region, zone, instanceType: type, spot: i.spot, pricePerHour: 0, available: true },
          types: [{ instanceType: type, pricePerHour: 0 }],
          template: meshdTemplate ? { name: templateName } : i.launchTemplate!,
          ...(i.imageIds[region] !== undefined && !meshdTemplate ? { imageId: i.imageIds[region] } : {})
        }),
        DryRun: true
      }), o)
    },
    { action: 'ec2:TerminateInstances', send: async (c, o) => await c.send(new TerminateInstancesCommand({ DryRun: true, InstanceIds: ['i-00000000000000000'] }), o) }
  ]
  if (meshdTemplate) {
    out.push(
      { action: 'ec2:CreateLaunchTemplate', send: async (c, o) => await c.send(new CreateLaunchTemplateCommand({ DryRun: true, LaunchTemplateName: templateName, LaunchTemplateData: { ImageId: i.imageIds[region]! } }), o) },
      { action: 'ec2:DeleteLaunchTemplate', send: async (c, o) => await c.send(new DeleteLaunchTemplateCommand({ DryRun: true, LaunchTemplateName: templateName }), o) }
    )
  }
  return out
}

/** One row per (region, action), regions and actions in parallel, each under `timeoutMs`. */
export async function checkPermissions (i: CheckInput): Promise<PermissionRow[]> {
  const rows = await Promise.all(i.regions.map(async (region) => await Promise.all(probes(i, region).map(async (p): Promise<PermissionRow> => {
    const t0 = performance.now()
    const row = (result: PermissionResult, detail: string | null): PermissionRow => ({ region, action: p.action, result, detail, ms: Math.round(performance.now() - t0) })
    try {
      await p.send(i.clients.ec2(region), deadline(i.timeoutMs ?? 10_000))
      // An endpoint that ignores DryRun ran the call: allowed, and it says so.
      return row('allowed', 'the endpoint ignored DryRun and ran the call')
    } catch (e) {
      const f = errorFacts(e)
      if (f.code === 'DryRunOperation') return row('allowed', null)
      if (f.code === 'UnauthorizedOperation' || f.code === 'AccessDenied' || f.code === 'AccessDeniedException') return row('missing', `${f.code}: ${firstLine(f.message)}`)
      if (f.code === 'AuthFailure' || f.code === 'CredentialsProviderError') return row('error', `${f.code}: ${firstLine(f.message)} (no usable credentials?)`)
      if (isUnavailable(f)) return row('unreachable', `${f.code}: ${firstLine(f.message)}`)
      return row('error', `${f.code}: ${firstLine(f.message)}`)
    }
  }))))
  return rows.flat()
}

function firstLine (s: string): string {
  // EC2 appends an encoded authorization message to UnauthorizedOperation: keep it (decode-authorization-message reads it) but on one line.
  return s.replace(/\s+/g, ' ').trim()
}
