/**
 * `kind: aws`: burst replicas on EC2, one instance per launch, spot or
 * on-demand. See README.md. The pure parts live beside it (offerings.ts,
 * fleet.ts, instances.ts, user-data.ts, launch-template.ts); this file makes
 * the calls.
 *
 * Nothing lives only in memory: an instance carries its cluster, key and
 * price as tags, so a new leader lists, adopts and terminates what an old one
 * launched, and a key is looked up by its tag before it is launched by a
 * provider object that has not seen its outcome.
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
  type DescribeInstancesCommandInput,
  type Instance as Ec2Instance,
  type _InstanceType
} from '@aws-sdk/client-ec2'
import {
  InsufficientCapacityError,
  NotFoundError,
  ProviderUnavailableError,
  QuotaError,
  offeringId,
  type Instance,
  type LaunchRequest,
  type Offering,
  type Provider
} from '../types.ts'
import { SingleFlight } from '../single-flight.ts'
import { Ec2Clients, deadline } from './clients.ts'
import { Ec2ApiError, errorFacts, typedError } from './errors.ts'
import { createFleetInput, describeRefusal, fleetOutcome, fleetTypes } from './fleet.ts'
import { clusterFilters, keyFilters, ownedBy, toInstance } from './instances.ts'
import { templatePrefix, templateSpec, type TemplateSpec } from './launch-template.ts'
import { buildOfferings, spotKey, type RegionFacts } from './offerings.ts'
import { onDemandPrice } from './on-demand-prices.ts'
import { Refreshing } from './refreshing.ts'
import type { RetryPolicy } from './retry.ts'
import { UnavailableOfferings } from './unavailable.ts'
import { BOOT_FILLED, bootSpec, burstNodeConfig, encodeUserData, swarmKeySource, userDataScript } from './user-data.ts'
import { TAGS } from './boot-spec.ts'

export interface AwsLog {
  info: (o: object, msg: string) => void
  warn: (o: object, msg: string) => void
}

/** Validates a node's config as `meshd start` would; throws with the reason. */
export type ValidateNodeConfig = (raw: unknown, file: string) => unknown

export interface AwsProviderInit {
  name: string
  cluster: string
  regions: string[]
  instanceTypes: string[]
  /** The AMI per region (AMI ids are regional). */
  imageIds?: Record<string, string>
  launchTemplate?: { id: string, version: string }
  /** zone → subnet. */
  subnetIds?: Record<string, string>
  securityGroupIds?: string[]
  /** Launch on spot (on-demand offerings are offered too, for the base and the fallback). @default true */
  spot?: boolean
  endpoint?: string | null
  /** region → zones; a region not listed: the zones DescribeAvailabilityZones says are available. */
  zones?: Record<string, string[]>
  /** Where instances fetch the bundle; null: the AMI has meshd in install_dir/current. */
  bundle?: { url: string, sha256: string } | null
  installDir?: string
  swarmKey?: { from: 'user_data' | 'ssm' | 'secrets_manager', parameter?: string | undefined, secret_id?: string | undefined }
  /** The swarm key file's text (read when the key goes in the user data). */
  swarmKeyText: () => string
  iamInstanceProfile?: string
  keyName?: string
  onDemandPrices?: Record<string, number>
  /** @default 5 min */
  priceRefreshMs?: number
  /** @default 3 min */
  unavailableForMs?: number
  /** The provider's defaults merged into every node config (burst ttl, idle timeout, log level). */
  defaults?: Record<string, unknown>
  /** Checks a node config before it goes into a template (a bad one fails on the leader, not on the instance). */
  validateConfig?: ValidateNodeConfig
  /** Every EC2 call, retries and backoff included. @default 30 s */
  callTimeoutMs?: number
  retry?: Partial<RetryPolicy>
  /** Injected by tests; otherwise made from `endpoint`. */
  clients?: Ec2Clients
  now?: () => number
  log?: AwsLog
}

/** Zones of a region are read again after this long. */
const ZONES_TTL_MS = 60 * 60_000
/** A meshd-made template unused for this long is deleted. */
export const TEMPLATE_UNUSED_MS = 24 * 60 * 60_000
/** How often old templates are looked for. */
const TEMPLATE_SWEEP_MS = 60 * 60_000
/** DescribeInstances page size (EC2 allows 5–1000 with filters). */
const PAGE = 500
/** Keys whose outcome this object saw, remembered at most this many. */
const MAX_KEYS = 10_000

/** What this object knows of a key it created: an instance, or "every attempt was answered: none". */
type KeyOutcome = { id: string, region: string } | 'none'

export function awsProvider (init: AwsProviderInit): AwsProvider {
  return new AwsProvider(init)
}

export class AwsProvider implements Provider {
  readonly name: string
  readonly kind = 'aws' as const
  private readonly init: AwsProviderInit
  private readonly now: () => number
  private readonly clients: Ec2Clients
  private readonly callMs: number
  private readonly spot: boolean
  readonly unavailable: UnavailableOfferings
  private readonly zones = new Map<string, Refreshing<string[]>>()
  private readonly spotPrices = new Map<string, Refreshing<Map<string, number>>>()
  private readonly creating = new SingleFlight<Instance>()
  private readonly outcomes = new Map<string, KeyOutcome>()
  /** Instance id → region, learnt from create/list (get/delete ask that region first). */
  private readonly regionOf = new Map<string, string>()
  /** `${region}/${name}` → the template made or found. */
  private readonly templates = new Map<string, Promise<void>>()
  private readonly templateUsed = new Map<string, number>()
  private lastSweep = 0
  private lastNotes = ''

  constructor (init: AwsProviderInit) {
    if (init.launchTemplate === undefined) {
      const missing = init.regions.filter((r) => init.imageIds?.[r] === undefined)
      if (missing.length > 0) throw new Error(`${init.name}: expected image_id (or launch_template) for ${missing.join(', ')}`)
    }
    this.init = init
    this.name = init.name
    this.now = init.now ?? Date.now
    this.spot = init.spot ?? true
    this.callMs = init.callTimeoutMs ?? 30_000
    this.clients = init.clients ?? new Ec2Clients({ endpoint: init.endpoint ?? null, ...(init.retry === undefined ? {} : { retry: init.retry }) })
    this.unavailable = new UnavailableOfferings(init.unavailableForMs ?? 180_000, this.now)
    for (const r of init.regions) {
      this.zones.set(r, new Refreshing(async () => await this.readZones(r), ZONES_TTL_MS, this.now))
      if (this.spot) this.spotPrices.set(r, new Refreshing(async () => await this.readSpotPrices(r), init.priceRefreshMs ?? 300_000, this.now))
    }
  }

  // -- offerings -----------------------------------------------------------------

  async offerings (): Promise<Offering[]> {
    const regions = await Promise.all(this.init.regions.map(async (r) => await this.regionFacts(r)))
    if (regions.every((r) => r.zones === null)) {
      throw new ProviderUnavailableError(this.name, `${this.name}: no region answered: ${regions.flatMap((r) => r.problems.map((p) => `${r.region}: ${p}`)).join('; ')}`)
    }
    const { offerings, notes } = buildOfferings({
      provider: this.name,
      instanceTypes: this.init.instanceTypes,
      spot: this.spot,
      onDemandOverrides: this.init.onDemandPrices ?? {},
      regions,
      unavailable: (k) => this.unavailable.get(k)
    })
    // Said once per change, not on every leader cycle.
    const text = notes.join('; ')
    if (text !== this.lastNotes) {
      this.lastNotes = text
      if (notes.length > 0) this.init.log?.warn({ provider: this.name, notes }, `${this.name}: ${text}`)
    }
    void this.sweepTemplates()
    return offerings
  }

  private async regionFacts (region: string): Promise<RegionFacts> {
    const problems: string[] = []
    const z = await this.zones.get(region)!.get()
    if (z.error !== null) problems.push(z.value === null ? `zones unknown: ${z.error}` : `zones from ${this.ago(z.at!)}: refresh failed: ${z.error}`)
    let spot: Map<string, number> | null = null
    const sp = this.spotPrices.get(region)
    if (sp !== undefined && z.value !== null) {
      const s = await sp.get()
      spot = s.value
      if (s.error !== null) problems.push(s.value === null ? `no spot prices: ${s.error}` : `spot prices from ${this.ago(s.at!)} kept: refresh failed: ${s.error}`)
    }
    return { region, zones: z.value, spot, problems }
  }

  private ago (at: number): string {
    return `${Math.round((this.now() - at) / 60_000)} min ago`
  }

  private async readZones (region: string): Promise<string[]> {
    const configured = this.init.zones?.[region]
    if (configured !== undefined) return [...configured]
    const out = await this.call(region, 'DescribeAvailabilityZones', async (c, o) => await c.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }] }), o))
    const zones = (out.AvailabilityZones ?? []).filter((z) => z.ZoneType === undefined || z.ZoneType === 'availability-zone').map((z) => z.ZoneName).filter((z): z is string => z !== undefined)
    if (zones.length === 0) throw new Error(`DescribeAvailabilityZones: no available zone in ${region}`)
    return zones.sort()
  }

  /** The latest spot price per (zone, type), every page. */
  private async readSpotPrices (region: string): Promise<Map<string, number>> {
    const latest = new Map<string, { price: number, at: number }>()
    let token: string | undefined
    const start = new Date(this.now())
    do {
      const out = await this.call(region, 'DescribeSpotPriceHistory', async (c, o) => await c.send(new DescribeSpotPriceHistoryCommand({
        InstanceTypes: this.init.instanceTypes as _InstanceType[],
        ProductDescriptions: ['Linux/UNIX'],
        StartTime: start,
        ...(token === undefined ? {} : { NextToken: token })
      }), o))
      for (const p of out.SpotPriceHistory ?? []) {
        if (p.AvailabilityZone === undefined || p.InstanceType === undefined || p.SpotPrice === undefined) continue
        const price = Number(p.SpotPrice)
        if (!Number.isFinite(price) || price < 0) continue
        const at = p.Timestamp instanceof Date ? p.Timestamp.getTime() : 0
        const k = spotKey(p.AvailabilityZone, p.InstanceType)
        const had = latest.get(k)
        if (had === undefined || at >= had.at) latest.set(k, { price, at })
      }
      token = out.NextToken === '' ? undefined : out.NextToken
    } while (token !== undefined)
    return new Map([...latest].map(([k, v]) => [k, v.price]))
  }

  /** The price in force for (type, zone, market), from what was read last (no call). */
  private priceInForce (region: string, type: string, zone: string, spot: boolean): number | null {
    if (!spot) return onDemandPrice(region, type, this.init.onDemandPrices ?? {})
    return this.spotPrices.get(region)?.peek()?.get(spotKey(zone, type)) ?? null
  }

  // -- create --------------------------------------------------------------------

  create (req: LaunchRequest): Promise<Instance> {
    return this.creating.run(req.key, async () => await this.doCreate(req))
  }

  private async doCreate (req: LaunchRequest): Promise<Instance> {
    const o = req.offering
    if (o.provider !== this.name || o.kind !== 'aws' || o.zone === undefined || o.instanceType === undefined || !this.init.regions.includes(o.region)) {
      throw new Error(`${this.name}: cannot launch offering ${offeringId(o)}: not one of this provider's`)
    }
    const known = this.outcomes.get(req.key)
    if (known !== undefined && known !== 'none') return await this.describeKnown(req.key, known)
    if (known === undefined) {
      // Another leader (or this one, before a lost answer) may have launched it: its tag says so.
      const found = await this.lookUpKey(req.cluster, req.key)
      if (found !== null) {
        this.remember(req.key, { id: found.id, region: found.region })
        return found
      }
      this.remember(req.key, 'none')
    }

    const refused = this.unavailable.get({ region: o.region, zone: o.zone, instanceType: o.instanceType, spot: o.spot })
    if (refused !== null) {
      throw new InsufficientCapacityError(this.name, `${this.name}: ${o.instanceType} ${o.zone} ${o.spot ? 'spot' : 'on-demand'}: ${refused.code} (refused ${Math.round((this.now() - (refused.until - (this.init.unavailableForMs ?? 180_000))) / 1000)} s ago; not asked again for ${Math.ceil((refused.until - this.now()) / 1000)} s)`, o)
    }

    const template = await this.template(req)
    const types = fleetTypes(o, this.init.instanceTypes, (t) => this.priceInForce(o.region, t, o.zone!, o.spot), (t) => this.unavailable.get({ region: o.region, zone: o.zone!, instanceType: t, spot: o.spot }) === null)
    const subnetId = this.init.subnetIds?.[o.zone]
    const input = createFleetInput({
      cluster: req.cluster,
      provider: this.name,
      key: req.key,
      nodeName: req.node.name,
      offering: o,
      types,
      template,
      ...(this.init.launchTemplate !== undefined && this.init.imageIds?.[o.region] !== undefined ? { imageId: this.init.imageIds[o.region] } : {}),
      ...(subnetId === undefined ? {} : { subnetId })
    })
    let out
    try {
      out = await this.call(o.region, 'CreateFleet', async (c, opt) => await c.send(new CreateFleetCommand(input), opt))
    } catch (e) {
      // The outcome is unknown: look the key up before the next attempt.
      this.outcomes.delete(req.key)
      if ('name' in template) this.templates.delete(`${o.region}/${template.name}`)
      throw this.typed('CreateFleet', e, o)
    }
    const r = fleetOutcome(out, o)
    if (r.kind === 'launched') {
      this.remember(req.key, { id: r.id, region: o.region })
      this.regionOf.set(r.id, o.region)
      this.init.log?.info({ provider: this.name, key: req.key, id: r.id, type: r.instanceType, zone: r.zone, spot: r.spot }, `${this.name}: launched ${r.id} (${r.instanceType} ${r.zone} ${r.spot ? 'spot' : 'on-demand'}) for ${req.key}`)
      const inst: Instance = {
        id: r.id,
        key: req.key,
        provider: this.name,
        region: o.region,
        zone: r.zone,
        spot: r.spot,
        instanceType: r.instanceType,
        state: 'pending',
        launchedAt: this.now(),
        pricePerHour: o.pricePerHour
      }
      return inst
    }
    for (const x of r.refusals) this.unavailable.mark({ region: o.region, zone: x.zone, instanceType: x.instanceType, spot: x.spot }, x.code)
    if (r.refusals.length > 0) {
      const also = [...r.quota, ...r.other].map(describeRefusal)
      throw new InsufficientCapacityError(this.name, `${this.name}: no capacity: ${r.refusals.map(describeRefusal).join('; ')}${also.length === 0 ? '' : `; also ${also.join('; ')}`}`, o)
    }
    if (r.quota.length > 0) throw new QuotaError(this.name, `${this.name}: account limit: ${r.quota.map(describeRefusal).join('; ')}`)
    const first = r.other[0]
    if (first === undefined) throw new Ec2ApiError(this.name, 'CreateFleet', { code: 'NoInstance', message: 'the fleet launched no instance and reported no error', status: 200 })
    throw new Ec2ApiError(this.name, 'CreateFleet', { code: first.code, message: r.other.map(describeRefusal).join('; '), status: 200 })
  }

  private remember (key: string, o: KeyOutcome): void {
    this.outcomes.delete(key)
    this.outcomes.set(key, o)
    if (this.outcomes.size > MAX_KEYS) this.outcomes.delete(this.outcomes.keys().next().value!)
  }

  /** The instance this object launched for a key, whatever its state now (terminated included). */
  private async describeKnown (key: string, k: { id: string, region: string }): Promise<Instance> {
    const i = await this.describeIn(k.region, k.id)
    if (i !== null) return i
    // EC2 forgets a terminated instance after a while: it was ours, and it is gone.
    return { id: k.id, key, provider: this.name, region: k.region, spot: false, state: 'terminated', launchedAt: 0, pricePerHour: 0 }
  }

  /** The key's instance by its tag in any region, newest live one first, else a terminated one; null when none. */
  private async lookUpKey (cluster: string, key: string): Promise<Instance | null> {
    const found = (await Promise.all(this.init.regions.map(async (r) => (await this.describeAll(r, { Filters: keyFilters(cluster, key) })).map((i) => this.toInstance(i, r))))).flat()
    if (found.length === 0) return null
    found.sort((a, b) => Number(a.state === 'terminated') - Number(b.state === 'terminated') || b.launchedAt - a.launchedAt)
    return found[0]!
  }

  /**
   * The launch template of a launch in `req.offering.region`: the user's
   * (as configured), or meshd's for these settings, made when missing.
   */
  private async template (req: LaunchRequest): Promise<{ name: string } | { id: string, version: string }> {
    if (this.init.launchTemplate !== undefined) return { ...this.init.launchTemplate }
    const region = req.offering.region
    const spec = this.templateSpec(req)
    const id = `${region}/${spec.name}`
    let p = this.templates.get(id)
    if (p === undefined) {
      p = this.ensureTemplate(region, spec)
      this.templates.set(id, p)
      p.catch(() => { this.templates.delete(id) })
    }
    await p
    this.templateUsed.set(id, this.now())
    return { name: spec.name }
  }

  /** meshd's template for this request's settings (pure apart from reading the swarm key). */
  templateSpec (req: LaunchRequest): TemplateSpec {
    const region = req.offering.region
    const config = burstNodeConfig({ provider: this.name, req, defaults: this.init.defaults ?? {} })
    if (this.init.validateConfig !== undefined) {
      // With what boot fills in, as the instance will have it.
      const filled: Record<string, unknown> = { ...config, node_name: 'boot-check', region, zone: req.offering.zone, spot: req.offering.spot, cost_per_hour: req.offering.pricePerHour, instance: { provider: this.name, id: 'i-0', key: req.key, launched_at: 0, notices: 'ec2' } }
      for (const k of BOOT_FILLED) if (!(k in filled)) throw new Error(`boot fills ${k}`)
      this.init.validateConfig(filled, `providers[${this.name}] node config`)
    }
    const spec = bootSpec({
      provider: this.name,
      cluster: req.cluster,
      installDir: this.init.installDir ?? '/opt/meshd',
      config,
      swarmKey: swarmKeySource(this.init.swarmKey ?? { from: 'user_data' }, region, this.init.swarmKeyText)
    })
    const script = userDataScript({ spec, bundle: this.init.bundle ?? null })
    return templateSpec({
      cluster: req.cluster,
      provider: this.name,
      imageId: this.init.imageIds![region]!,
      userData: encodeUserData(script),
      ...(this.init.iamInstanceProfile === undefined ? {} : { iamInstanceProfile: this.init.iamInstanceProfile }),
      ...(this.init.keyName === undefined ? {} : { keyName: this.init.keyName }),
      securityGroupIds: this.init.securityGroupIds ?? []
    })
  }

  private async ensureTemplate (region: string, spec: TemplateSpec): Promise<void> {
    try {
      await this.call(region, 'DescribeLaunchTemplates', async (c, o) => await c.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [spec.name] }), o))
      return
    } catch (e) {
      if (errorFacts(e).code !== 'InvalidLaunchTemplateName.NotFoundException') throw this.typed('DescribeLaunchTemplates', e)
    }
    try {
      await this.call(region, 'CreateLaunchTemplate', async (c, o) => await c.send(new CreateLaunchTemplateCommand({
        LaunchTemplateName: spec.name,
        ClientToken: spec.name,
        LaunchTemplateData: spec.data,
        TagSpecifications: [{ ResourceType: 'launch-template', Tags: [{ Key: TAGS.cluster, Value: this.init.cluster }, { Key: TAGS.provider, Value: this.name }] }]
      }), o))
      this.init.log?.info({ provider: this.name, region, template: spec.name }, `${this.name}: made launch template ${spec.name} in ${region}`)
    } catch (e) {
      // Another leader made it meanwhile: the same name is the same content.
      if (errorFacts(e).code === 'InvalidLaunchTemplateName.AlreadyExistsException') return
      throw this.typed('CreateLaunchTemplate', e)
    }
  }

  /**
   * Deletes meshd-made templates of this provider that nobody here used for
   * TEMPLATE_UNUSED_MS and that were made longer ago than that; at most once
   * an hour, never failing a caller (a failure is logged).
   */
  async sweepTemplates (): Promise<void> {
    if (this.init.launchTemplate !== undefined || this.now() - this.lastSweep < TEMPLATE_SWEEP_MS) return
    this.lastSweep = this.now()
    const prefix = templatePrefix(this.init.cluster, this.name)
    for (const region of this.init.regions) {
      try {
        const out = await this.call(region, 'DescribeLaunchTemplates', async (c, o) => await c.send(new DescribeLaunchTemplatesCommand({
          Filters: [{ Name: `tag:${TAGS.cluster}`, Values: [this.init.cluster] }, { Name: `tag:${TAGS.provider}`, Values: [this.name] }]
        }), o))
        for (const t of out.LaunchTemplates ?? []) {
          const name = t.LaunchTemplateName
          if (name === undefined || !name.startsWith(prefix)) continue
          const id = `${region}/${name}`
          const used = this.templateUsed.get(id) ?? (this.templates.has(id) ? this.now() : t.CreateTime?.getTime() ?? this.now())
          if (this.now() - used < TEMPLATE_UNUSED_MS) continue
          await this.call(region, 'DeleteLaunchTemplate', async (c, o) => await c.send(new DeleteLaunchTemplateCommand({ LaunchTemplateName: name }), o))
          this.templateUsed.delete(id)
          this.init.log?.info({ provider: this.name, region, template: name }, `${this.name}: deleted launch template ${name} (unused for a day)`)
        }
      } catch (e) {
        this.init.log?.warn({ provider: this.name, region, err: (e as Error).message }, `${this.name}: launch template clean-up in ${region} failed`)
      }
    }
  }

  // -- delete / get / list -------------------------------------------------------

  async delete (id: string): Promise<void> {
    const found = await this.find(id)
    if (found === null || found.state === 'terminated') throw new NotFoundError(this.name, id)
    // Already terminating: accepted before, nothing to do again.
    if (found.ec2State === 'shutting-down') return
    try {
      await this.call(found.region, 'TerminateInstances', async (c, o) => await c.send(new TerminateInstancesCommand({ InstanceIds: [id] }), o))
    } catch (e) {
      if (isUnknownInstance(errorFacts(e).code)) throw new NotFoundError(this.name, id, { cause: e })
      throw this.typed('TerminateInstances', e)
    }
  }

  async get (id: string): Promise<Instance> {
    const found = await this.find(id)
    if (found === null || found.state === 'terminated') throw new NotFoundError(this.name, id)
    return found.instance
  }

  async list (): Promise<Instance[]> {
    const all = await Promise.all(this.init.regions.map(async (r) => {
      const got = await this.describeAll(r, { Filters: clusterFilters(this.init.cluster), MaxResults: PAGE })
      return got.filter((i) => ownedBy(i, this.name)).map((i) => {
        this.regionOf.set(i.InstanceId ?? '', r)
        return this.toInstance(i, r)
      })
    }))
    return all.flat().sort((a, b) => a.launchedAt - b.launchedAt || a.id.localeCompare(b.id))
  }

  /** The instance `id` of this cluster and provider, in whichever region has it; null when none does. */
  private async find (id: string): Promise<{ instance: Instance, region: string, state: Instance['state'], ec2State: string } | null> {
    if (!/^i-[0-9a-f]{8,32}$/.test(id)) return null
    const first = this.regionOf.get(id)
    const order = first === undefined ? this.init.regions : [first, ...this.init.regions.filter((r) => r !== first)]
    for (const region of order) {
      const raw = await this.describeRaw(region, id)
      if (raw === null) continue
      if (raw.Tags?.find((t) => t.Key === TAGS.cluster)?.Value !== this.init.cluster || !ownedBy(raw, this.name)) return null
      const instance = this.toInstance(raw, region)
      this.regionOf.set(id, region)
      return { instance, region, state: instance.state, ec2State: raw.State?.Name ?? 'terminated' }
    }
    return null
  }

  private async describeIn (region: string, id: string): Promise<Instance | null> {
    const raw = await this.describeRaw(region, id)
    return raw === null ? null : this.toInstance(raw, region)
  }

  private async describeRaw (region: string, id: string): Promise<Ec2Instance | null> {
    try {
      const got = await this.describeAll(region, { InstanceIds: [id] })
      return got.find((i) => i.InstanceId === id) ?? null
    } catch (e) {
      if (isUnknownInstance(errorFacts((e as Error).cause ?? e).code)) return null
      throw e
    }
  }

  /** Every page of a DescribeInstances. */
  private async describeAll (region: string, input: DescribeInstancesCommandInput): Promise<Ec2Instance[]> {
    const out: Ec2Instance[] = []
    let token: string | undefined
    do {
      const page = await this.call(region, 'DescribeInstances', async (c, o) => await c.send(new DescribeInstancesCommand({ ...input, ...(token === undefined ? {} : { NextToken: token }) }), o))
        .catch((e: unknown) => { throw isUnknownInstance(errorFacts(e).code) ? e : this.typed('DescribeInstances', e) })
      for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []))
      token = page.NextToken === '' ? undefined : page.NextToken
    } while (token !== undefined)
    return out
  }

  private toInstance (i: Ec2Instance, region: string): Instance {
    return toInstance(i, this.name, region, (type, zone, spot) => this.priceInForce(region, type, zone, spot))
  }

  // -- calls ---------------------------------------------------------------------

  /** One EC2 call in `region` under the call deadline (the client's retries inside it). */
  private async call<T> (region: string, _action: string, body: (c: ReturnType<Ec2Clients['ec2']>, o: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
    return await body(this.clients.ec2(region), deadline(this.callMs))
  }

  private typed (action: string, e: unknown, offering?: Offering): Error {
    return typedError(this.name, action, e, offering)
  }

  /** Closes the EC2 clients' connections. */
  close (): void {
    this.clients.destroy()
  }
}

function isUnknownInstance (code: string): boolean {
  return code === 'InvalidInstanceID.NotFound' || code === 'InvalidInstanceID.Malformed'
}
