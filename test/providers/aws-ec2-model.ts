/**
 * A small in-memory model of the EC2 actions the aws provider calls, behind
 * aws-sdk-client-mock (the SDK's `send` is stubbed: no HTTP, no middleware,
 * no retries — the real HTTP path is test/helpers/fake-ec2/, and the retry
 * strategy is tested over a loopback server in aws-retry.test.ts).
 *
 * Modelled, as EC2 does it: regions with zones; spot price history
 * (paginated, two records a page); launch templates by name (NotFound /
 * AlreadyExists); instant CreateFleet (ClientToken idempotency with
 * IdempotentParameterMismatch, capacity refusals per (type, zone, market) in
 * `Errors` with no instance, quota errors, tags on instance); DescribeInstances
 * with tag / state filters, InstanceIds (NotFound), MaxResults + NextToken
 * (pages of at most two); TerminateInstances (shutting-down, then terminated
 * at the next describe: eventual consistency in one step); injected
 * throttling. Not modelled: subnets, AMIs, the template's content at launch,
 * volumes (their tag specification is only checked in the request).
 */
import { mockClient, type AwsStub } from 'aws-sdk-client-mock'
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  DeleteLaunchTemplateCommand,
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSpotPriceHistoryCommand,
  EC2Client,
  TerminateInstancesCommand,
  type CreateFleetCommandInput,
  type DescribeInstancesCommandInput,
  type Instance,
  type Tag
} from '@aws-sdk/client-ec2'

export function ec2Error (code: string, status = 400, message = `${code} (model)`): Error {
  return Object.assign(new Error(message), { name: code, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } })
}

interface ModelInstance extends Instance { region: string }

export interface Ec2ModelOptions {
  zones: Record<string, string[]>
  /** region → zone → type → spot $/h. */
  spot: Record<string, Record<string, Record<string, number>>>
}

export class Ec2Model {
  readonly mock: AwsStub<any, any, any>
  readonly zones: Record<string, string[]>
  spot: Record<string, Record<string, Record<string, number>>>
  readonly instances = new Map<string, ModelInstance>()
  readonly templates = new Map<string, unknown>()
  private readonly tokens = new Map<string, { params: string, answer: unknown }>()
  /** `${region}/${zone}/${type}/${spot|on-demand}` → capacity error code. */
  readonly refuse = new Map<string, string>()
  /** The next CreateFleet answers this code (e.g. VcpuLimitExceeded) in Errors, for every override. */
  fleetErrorCode: string | null = null
  /** Errors the next calls of an action throw (as HTTP errors), by action name ('CreateFleet'). */
  private readonly failing = new Map<string, Error[]>()
  /** When false, CreateFleet ignores ClientToken (as some EC2-compatible endpoints do). */
  honourTokens = true
  private seq = 0

  constructor (o: Ec2ModelOptions) {
    this.zones = o.zones
    this.spot = o.spot
    this.mock = mockClient(EC2Client)
    const on = (cmd: any, fn: (input: any, region: string) => unknown): void => {
      const action = (cmd.name as string).replace(/Command$/, '')
      this.mock.on(cmd).callsFake(async (input: unknown, getClient: () => EC2Client) => {
        const region = await getClient().config.region()
        const e = this.failing.get(action)?.shift()
        if (e !== undefined) throw e
        return fn(input, region)
      })
    }
    on(DescribeAvailabilityZonesCommand, (_i, r) => ({ AvailabilityZones: (this.zones[r] ?? []).map((z) => ({ ZoneName: z, State: 'available', ZoneType: 'availability-zone', RegionName: r })) }))
    on(DescribeSpotPriceHistoryCommand, (i, r) => this.spotHistory(i, r))
    on(DescribeLaunchTemplatesCommand, (i, r) => this.describeTemplates(i, r))
    on(CreateLaunchTemplateCommand, (i, r) => this.createTemplate(i, r))
    on(DeleteLaunchTemplateCommand, (i, r) => {
      this.templates.delete(`${r}/${i.LaunchTemplateName as string}`)
      return {}
    })
    on(CreateFleetCommand, (i, r) => this.createFleet(i, r))
    on(DescribeInstancesCommand, (i, r) => this.describeInstances(i, r))
    on(TerminateInstancesCommand, (i, r) => this.terminate(i, r))
  }

  /** The next call of `action` throws `e`. */
  failNext (action: string, e: Error): void {
    const l = this.failing.get(action) ?? []
    l.push(e)
    this.failing.set(action, l)
  }

  restore (): void {
    this.mock.restore()
  }

  /** The inputs of every call of `cmd`, with the region each went to. */
  async calls (cmd: any): Promise<Array<{ input: any, region: string }>> {
    return await Promise.all(this.mock.commandCalls(cmd).map(async (c) => ({ input: c.args[0].input, region: await (c.thisValue as EC2Client).config.region() })))
  }

  private spotHistory (i: any, region: string): unknown {
    const rows: Array<{ AvailabilityZone: string, InstanceType: string, SpotPrice: string, ProductDescription: string, Timestamp: Date }> = []
    for (const [zone, types] of Object.entries(this.spot[region] ?? {})) {
      for (const [type, price] of Object.entries(types)) {
        if (Array.isArray(i.InstanceTypes) && !i.InstanceTypes.includes(type)) continue
        // An older record first: the provider must keep the latest.
        rows.push({ AvailabilityZone: zone, InstanceType: type, SpotPrice: String(price * 3), ProductDescription: 'Linux/UNIX', Timestamp: new Date(Date.now() - 3_600_000) })
        rows.push({ AvailabilityZone: zone, InstanceType: type, SpotPrice: String(price), ProductDescription: 'Linux/UNIX', Timestamp: new Date() })
      }
    }
    const start = Number(i.NextToken ?? '0')
    const page = rows.slice(start, start + 2)
    return { SpotPriceHistory: page, NextToken: start + 2 < rows.length ? String(start + 2) : '' }
  }

  private describeTemplates (i: any, region: string): unknown {
    if (Array.isArray(i.LaunchTemplateNames)) {
      const names = i.LaunchTemplateNames as string[]
      for (const n of names) if (!this.templates.has(`${region}/${n}`)) throw ec2Error('InvalidLaunchTemplateName.NotFoundException', 400, `At least one of the launch templates specified in the request does not exist.`)
      return { LaunchTemplates: names.map((n) => ({ LaunchTemplateName: n, LaunchTemplateId: `lt-${n.slice(-12)}` })) }
    }
    return { LaunchTemplates: [...this.templates.keys()].filter((k) => k.startsWith(`${region}/`)).map((k) => ({ LaunchTemplateName: k.slice(region.length + 1), CreateTime: new Date(0) })) }
  }

  private createTemplate (i: any, region: string): unknown {
    const id = `${region}/${i.LaunchTemplateName as string}`
    if (this.templates.has(id)) throw ec2Error('InvalidLaunchTemplateName.AlreadyExistsException', 400, 'Launch template name already in use.')
    this.templates.set(id, i.LaunchTemplateData)
    return { LaunchTemplate: { LaunchTemplateName: i.LaunchTemplateName, LaunchTemplateId: `lt-${this.seq++}` } }
  }

  private createFleet (i: CreateFleetCommandInput, region: string): unknown {
    const params = JSON.stringify({ ...i, ClientToken: undefined })
    const tokenId = `${region}/${i.ClientToken ?? ''}`
    if (this.honourTokens && i.ClientToken !== undefined) {
      const had = this.tokens.get(tokenId)
      if (had !== undefined) {
        if (had.params !== params) throw ec2Error('IdempotentParameterMismatch', 400, 'the client token was used with other parameters')
        return had.answer
      }
    }
    const cfg = i.LaunchTemplateConfigs?.[0]
    const name = cfg?.LaunchTemplateSpecification?.LaunchTemplateName
    if (name !== undefined && !this.templates.has(`${region}/${name}`)) throw ec2Error('InvalidLaunchTemplateName.NotFoundException', 400, 'no such launch template')
    const market = i.TargetCapacitySpecification?.DefaultTargetCapacityType === 'spot' ? 'spot' : 'on-demand'
    const errors: unknown[] = []
    let answer: unknown = null
    // Spot: cheapest available first (price-capacity-optimized, roughly); on-demand: as given.
    const overrides = [...(cfg?.Overrides ?? [])]
    if (market === 'spot') overrides.sort((a, b) => (this.spot[region]?.[a.AvailabilityZone!]?.[a.InstanceType!] ?? 0) - (this.spot[region]?.[b.AvailabilityZone!]?.[b.InstanceType!] ?? 0))
    for (const o of overrides) {
      const lto = { LaunchTemplateSpecification: cfg?.LaunchTemplateSpecification, Overrides: { InstanceType: o.InstanceType, AvailabilityZone: o.AvailabilityZone } }
      if (this.fleetErrorCode !== null) {
        errors.push({ ErrorCode: this.fleetErrorCode, ErrorMessage: 'limit (model)', Lifecycle: market, LaunchTemplateAndOverrides: lto })
        continue
      }
      const code = this.refuse.get(`${region}/${o.AvailabilityZone ?? ''}/${o.InstanceType ?? ''}/${market}`)
      if (code !== undefined) {
        errors.push({ ErrorCode: code, ErrorMessage: 'There is no capacity (model)', Lifecycle: market, LaunchTemplateAndOverrides: lto })
        continue
      }
      const id = `i-${(0x1000000 + this.seq++).toString(16).padStart(17, '0')}`
      const tags: Tag[] = i.TagSpecifications?.find((t) => t.ResourceType === 'instance')?.Tags ?? []
      this.instances.set(id, {
        region,
        InstanceId: id,
        InstanceType: o.InstanceType,
        Placement: { AvailabilityZone: o.AvailabilityZone },
        State: { Name: 'pending', Code: 0 },
        LaunchTime: new Date(),
        PrivateIpAddress: `10.0.0.${this.seq % 250}`,
        Tags: tags.map((t) => ({ ...t })),
        ...(market === 'spot' ? { InstanceLifecycle: 'spot' } : {})
      })
      answer = { FleetId: `fleet-${this.seq}`, Errors: errors, Instances: [{ InstanceIds: [id], InstanceType: o.InstanceType, Lifecycle: market, LaunchTemplateAndOverrides: lto }] }
      break
    }
    answer ??= { FleetId: `fleet-${this.seq++}`, Errors: errors, Instances: [] }
    if (i.ClientToken !== undefined) this.tokens.set(tokenId, { params, answer })
    return answer
  }

  private describeInstances (i: DescribeInstancesCommandInput, region: string): unknown {
    // Terminations complete at the next look (eventual consistency, one step).
    for (const inst of this.instances.values()) {
      if (inst.State?.Name === 'shutting-down' && (inst as { seen?: boolean }).seen === true) inst.State = { Name: 'terminated', Code: 48 }
      else if (inst.State?.Name === 'shutting-down') (inst as { seen?: boolean }).seen = true
      else if (inst.State?.Name === 'pending') inst.State = { Name: 'running', Code: 16 }
    }
    let all = [...this.instances.values()].filter((x) => x.region === region)
    if (i.InstanceIds !== undefined) {
      for (const id of i.InstanceIds) {
        if (!/^i-[0-9a-f]+$/.test(id)) throw ec2Error('InvalidInstanceID.Malformed', 400, `Invalid id: "${id}"`)
        if (!all.some((x) => x.InstanceId === id)) throw ec2Error('InvalidInstanceID.NotFound', 400, `The instance ID '${id}' does not exist`)
      }
      all = all.filter((x) => i.InstanceIds!.includes(x.InstanceId!))
    }
    for (const f of i.Filters ?? []) {
      const values = f.Values ?? []
      if (f.Name === 'instance-state-name') all = all.filter((x) => values.includes(x.State?.Name ?? ''))
      else if (f.Name?.startsWith('tag:') === true) {
        const k = f.Name.slice(4)
        all = all.filter((x) => x.Tags?.some((t) => t.Key === k && values.includes(t.Value ?? '')))
      } else throw ec2Error('InvalidParameterValue', 400, `The filter '${f.Name ?? ''}' is invalid (model)`)
    }
    const size = Math.min(i.MaxResults ?? 1000, 2)
    const start = Number(i.NextToken ?? '0')
    const page = all.slice(start, start + size)
    return {
      Reservations: page.map((x) => {
        const { region: _r, ...inst } = x
        return { Instances: [structuredClone(inst)] }
      }),
      NextToken: start + size < all.length ? String(start + size) : undefined
    }
  }

  private terminate (i: any, region: string): unknown {
    const out: unknown[] = []
    for (const id of i.InstanceIds as string[]) {
      const inst = this.instances.get(id)
      if (inst === undefined || inst.region !== region) throw ec2Error('InvalidInstanceID.NotFound', 400, `The instance ID '${id}' does not exist`)
      const prev = inst.State?.Name
      if (prev !== 'terminated') inst.State = { Name: 'shutting-down', Code: 32 }
      out.push({ InstanceId: id, PreviousState: { Name: prev }, CurrentState: inst.State })
    }
    return { TerminatingInstances: out }
  }
}
