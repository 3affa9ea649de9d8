/**
 * The fake EC2's state and actions: launch templates, instances, spot
 * prices, capacity rules, throttling and permissions, in memory. Each action
 * takes the parsed form (query.ts) and returns the XML body's members or
 * throws an Ec2Error; the machines behind instances (namespaces, IMDS, the
 * user data run) are behind the `Machines` interface (machines.ts).
 */
import { TokenBucket } from '../../../mesh/discovery/token-bucket.ts'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { Ec2Error, str, strings, sub, trees, type Tree, type Xml } from './query.ts'

export type Market = 'spot' | 'on-demand'
export type StateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped'
const STATE_CODE: Record<StateName, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 }

export interface LaunchTemplateData {
  imageId?: string
  /** Decoded (EC2 takes it base64). */
  userData?: string
  keyName?: string
  iamInstanceProfile?: string
  securityGroupIds: string[]
  metadataTags: boolean
}

export interface LaunchTemplate {
  id: string
  name: string
  createdAt: number
  versions: LaunchTemplateData[]
}

export interface InstanceRecord {
  id: string
  reservationId: string
  region: string
  zone: string
  type: string
  market: Market
  imageId: string
  subnetId?: string
  keyName?: string
  privateIp: string
  launchTime: number
  tags: Record<string, string>
  userData: string
  metadataTags: boolean
  state: StateName
  stateReason?: { code: string, message: string }
  /** When it reached `terminated` (it stays listed for a while, as on EC2). */
  terminatedAt?: number
}

/** What runs an instance: starts it (returns its address at once, `ready` when it runs) and stops it. */
export interface Machines {
  start: (inst: InstanceRecord) => { privateIp: string, ready: Promise<void> }
  /** SIGTERM to everything of the instance, SIGKILL after the grace; resolves when nothing is left. */
  stop: (id: string) => Promise<void>
  announceInterruption: (id: string, at: number) => void
  announceRebalance: (id: string, at?: number) => void
}

/** Which offerings EC2 refuses for capacity; an absent field matches any. */
export interface CapacityRule { type?: string, zone?: string, market?: Market, code?: string }

export interface Ec2Options {
  /** Zones per region (DescribeAvailabilityZones, and where overrides may launch). */
  zones?: Record<string, string[]>
  /** Spot price for a (type, zone) nobody set. @default 0.05 */
  defaultSpotPrice?: number
  /** On-demand price for a type nobody set (orders on-demand overrides: lowest-price). @default 0.10 */
  defaultOnDemandPrice?: number
  /** ClientToken makes CreateFleet / CreateLaunchTemplate idempotent. @default true */
  honourClientToken?: boolean
  /** Page size when the caller gives no MaxResults. @default 1000 */
  pageSize?: number
  /** How long a terminated instance stays listed. @default 1 hour (EC2: about an hour) */
  terminatedVisibleMs?: number
  now?: () => number
}

export const DEFAULT_ZONES: Record<string, string[]> = {
  'us-east-1': ['us-east-1a', 'us-east-1b', 'us-east-1c'],
  'us-west-2': ['us-west-2a', 'us-west-2b', 'us-west-2c']
}

const hex = (n: number): string => randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n)
const iso = (ms: number): string => new Date(ms).toISOString()

export class Ec2 {
  readonly templates = new Map<string, LaunchTemplate>()
  readonly instances = new Map<string, InstanceRecord>()
  readonly calls = new Map<string, number>()
  readonly denied = new Set<string>()
  private readonly spot = new Map<string, Array<{ price: number, at: number }>>()
  private readonly onDemand = new Map<string, number>()
  private readonly refusals: CapacityRule[] = []
  private readonly tokens = new Map<string, { hash: string, answer: Record<string, Xml> }>()
  private throttleCount = 0
  private bucket: { tokens: TokenBucket, actions?: Set<string> } | null = null
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly zones: Record<string, string[]>
  private readonly now: () => number
  honourClientToken: boolean
  private readonly machines: Machines
  private readonly opts: Ec2Options

  constructor (machines: Machines, opts: Ec2Options = {}) {
    this.machines = machines
    this.opts = opts
    this.zones = opts.zones ?? DEFAULT_ZONES
    this.now = opts.now ?? Date.now
    this.honourClientToken = opts.honourClientToken ?? true
  }

  // ---- control ----

  setSpotPrice (type: string, zone: string, price: number): void {
    const k = `${type} ${zone}`
    this.spot.set(k, [...(this.spot.get(k) ?? []), { price, at: this.now() }])
  }

  setOnDemandPrice (type: string, price: number): void { this.onDemand.set(type, price) }

  spotPrice (type: string, zone: string): number {
    return this.spot.get(`${type} ${zone}`)?.at(-1)?.price ?? this.opts.defaultSpotPrice ?? 0.05
  }

  refuse (rule: CapacityRule): void { this.refusals.push(rule) }

  /** Capacity returns for every rule the given one covers (no argument: everywhere). */
  restore (rule: CapacityRule = {}): void {
    for (let i = this.refusals.length - 1; i >= 0; i--) {
      const r = this.refusals[i]!
      if ((rule.type === undefined || r.type === rule.type) && (rule.zone === undefined || r.zone === rule.zone) && (rule.market === undefined || r.market === rule.market)) this.refusals.splice(i, 1)
    }
  }

  /** The next `count` calls are throttled (RequestLimitExceeded, 503). */
  throttleNext (count: number): void { this.throttleCount += count }

  /** A token bucket (EC2's own model): `perSecond` refill, `burst` capacity; null lifts it. */
  throttleRate (limit: { perSecond: number, burst: number, actions?: string[] } | null): void {
    this.bucket = limit === null ? null : { tokens: new TokenBucket(limit.burst, limit.perSecond, this.now()), ...(limit.actions === undefined ? {} : { actions: new Set(limit.actions) }) }
  }

  /**
   * Interruption: a notice on the instance's IMDS now, the instance
   * terminated at `at`. `notice: false` reclaims it at `at` with no notice
   * (what a system that does not read the notices sees: the node just dies).
   */
  interrupt (id: string, at: number, notice = true): void {
    const inst = this.get(id)
    if (notice) this.machines.announceInterruption(id, at)
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (inst.state === 'pending' || inst.state === 'running') this.terminate(inst, { code: 'Server.SpotInstanceTermination', message: 'Server.SpotInstanceTermination: Spot instance termination' })
    }, Math.max(0, at - this.now()))
    this.timers.add(timer)
  }

  rebalance (id: string, at?: number): void {
    this.get(id)
    this.machines.announceRebalance(id, at)
  }

  get (id: string): InstanceRecord {
    const inst = this.instances.get(id)
    if (inst === undefined) throw new Error(`fake EC2: no instance ${id}`)
    return inst
  }

  /** Ends the timers (interruptions not yet due). */
  close (): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  // ---- the protocol ----

  /** Answers one action (the caller renders the XML); every call counts, refused ones too. */
  handle (action: string, region: string, p: Tree): Record<string, Xml> {
    this.calls.set(action, (this.calls.get(action) ?? 0) + 1)
    if (this.throttled(action)) throw new Ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503)
    const fn = ACTIONS[action]
    if (fn === undefined) throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service (the fake EC2 models only ${Object.keys(ACTIONS).join(', ')}).`)
    if (!(region in this.zones)) throw new Ec2Error('AuthFailure', `the fake EC2 has no region ${region} (it has ${Object.keys(this.zones).join(', ')})`, 401)
    if (this.denied.has(action)) throw new Ec2Error('UnauthorizedOperation', `You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/test is not authorized to perform: ec2:${action}`, 403)
    if (str(p, 'DryRun') === 'true') throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412)
    return fn.call(this, region, p)
  }

  private throttled (action: string): boolean {
    if (this.throttleCount > 0) { this.throttleCount--; return true }
    const b = this.bucket
    if (b === null || (b.actions !== undefined && !b.actions.has(action))) return false
    return !b.tokens.take(1, this.now())
  }

  private idempotent (p: Tree, answer: () => Record<string, Xml>): Record<string, Xml> {
    const token = str(p, 'ClientToken')
    if (token === undefined || !this.honourClientToken) return answer()
    const { ClientToken: _, ...rest } = p
    const hash = createHash('sha256').update(JSON.stringify(rest)).digest('hex')
    const seen = this.tokens.get(token)
    if (seen !== undefined) {
      if (seen.hash !== hash) throw new Ec2Error('IdempotentParameterMismatch', `The client token ${token} was used before with other parameters.`)
      return seen.answer
    }
    const out = answer()
    this.tokens.set(token, { hash, answer: out })
    return out
  }

  private page<T> (items: T[], p: Tree): { items: T[], nextToken: string | undefined } {
    const max = str(p, 'MaxResults') === undefined ? this.opts.pageSize ?? 1000 : Number(str(p, 'MaxResults'))
    if (!Number.isInteger(max) || max < 1) throw new Ec2Error('InvalidParameterValue', `MaxResults: expected a positive integer, got ${str(p, 'MaxResults')}`)
    const token = str(p, 'NextToken')
    let from = 0
    if (token !== undefined) {
      from = Number(Buffer.from(token, 'base64url').toString().replace(/^page:/, ''))
      if (!Number.isInteger(from) || from < 0) throw new Ec2Error('InvalidParameterValue', `NextToken: ${token} is not a token this endpoint gave`)
    }
    const next = from + max < items.length ? Buffer.from(`page:${from + max}`).toString('base64url') : undefined
    return { items: items.slice(from, from + max), nextToken: next }
  }

  zonesOf (region: string): string[] { return this.zones[region] ?? [] }

  describeAvailabilityZones (region: string, p: Tree): Record<string, Xml> {
    let zones = this.zonesOf(region)
    for (const f of trees(p, 'Filter')) {
      const name = str(f, 'Name')
      const values = strings(f, 'Value')
      if (name === 'state') zones = values.includes('available') ? zones : []
      else if (name === 'zone-name') zones = zones.filter((z) => values.includes(z))
      else throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid (the fake EC2 knows state, zone-name)`)
    }
    return { availabilityZoneInfo: zones.map((z, i) => ({ zoneName: z, zoneId: `${region.replace(/-/g, '').slice(0, 4)}-az${i + 1}`, regionName: region, zoneState: 'available', optInStatus: 'opt-in-not-required', zoneType: 'availability-zone', groupName: region, networkBorderGroup: region })) }
  }

  describeSpotPriceHistory (region: string, p: Tree): Record<string, Xml> {
    const types = strings(p, 'InstanceType')
    const products = strings(p, 'ProductDescription')
    const zone = str(p, 'AvailabilityZone')
    const start = str(p, 'StartTime') === undefined ? 0 : Date.parse(str(p, 'StartTime')!)
    if (products.length > 0 && !products.includes('Linux/UNIX')) return { spotPriceHistorySet: [] }
    const rows: Array<{ type: string, zone: string, price: number, at: number }> = []
    for (const z of this.zonesOf(region)) {
      if (zone !== undefined && z !== zone) continue
      const known = [...this.spot.keys()].filter((k) => k.endsWith(` ${z}`)).map((k) => k.split(' ')[0]!)
      for (const type of types.length > 0 ? types : known) {
        const hist = this.spot.get(`${type} ${z}`) ?? [{ price: this.opts.defaultSpotPrice ?? 0.05, at: 0 }]
        // What was in force at StartTime, and every change since (EC2's own answer), newest first.
        const inForce = hist.filter((h) => h.at <= start).at(-1)
        for (const h of hist) if (h.at > start || h === inForce) rows.push({ type, zone: z, price: h.price, at: h.at })
      }
    }
    rows.sort((a, b) => b.at - a.at)
    const { items, nextToken } = this.page(rows, p)
    return {
      spotPriceHistorySet: items.map((r) => ({ instanceType: r.type, productDescription: 'Linux/UNIX', spotPrice: r.price.toFixed(6), timestamp: iso(r.at), availabilityZone: r.zone })),
      nextToken
    }
  }

  private template (spec: Tree | undefined, where: string): LaunchTemplate {
    const id = str(spec, 'LaunchTemplateId')
    const name = str(spec, 'LaunchTemplateName')
    if (id !== undefined) {
      const lt = this.templates.get(id)
      if (lt === undefined) throw new Ec2Error('InvalidLaunchTemplateId.NotFound', `The specified launch template, with template ID ${id}, does not exist.`)
      return lt
    }
    if (name !== undefined) {
      const lt = [...this.templates.values()].find((x) => x.name === name)
      if (lt === undefined) throw new Ec2Error('InvalidLaunchTemplateName.NotFoundException', `The specified launch template, with template name ${name}, does not exist.`)
      return lt
    }
    throw new Ec2Error('MissingParameter', `${where}: expected LaunchTemplateId or LaunchTemplateName`)
  }

  private templateXml (lt: LaunchTemplate): Record<string, Xml> {
    return { launchTemplateId: lt.id, launchTemplateName: lt.name, createTime: iso(lt.createdAt), createdBy: 'arn:aws:iam::123456789012:user/test', defaultVersionNumber: 1, latestVersionNumber: lt.versions.length }
  }

  describeLaunchTemplates (_region: string, p: Tree): Record<string, Xml> {
    const names = strings(p, 'LaunchTemplateName')
    const ids = strings(p, 'LaunchTemplateId')
    let found = [...this.templates.values()]
    if (names.length > 0 || ids.length > 0) {
      found = [...ids.map((id) => this.template({ LaunchTemplateId: id }, 'LaunchTemplateId')), ...names.map((n) => this.template({ LaunchTemplateName: n }, 'LaunchTemplateName'))]
    }
    const { items, nextToken } = this.page(found, p)
    return { launchTemplates: items.map((lt) => this.templateXml(lt)), nextToken }
  }

  createLaunchTemplate (_region: string, p: Tree): Record<string, Xml> {
    return this.idempotent(p, () => {
      const name = str(p, 'LaunchTemplateName')
      if (name === undefined || !/^[a-zA-Z0-9().\-/_]{3,128}$/.test(name)) throw new Ec2Error('InvalidLaunchTemplateName.MalformedException', `The launch template name ${name ?? '(none)'} is malformed: 3 to 128 of a-z A-Z 0-9 ( ) . - / _`)
      if ([...this.templates.values()].some((x) => x.name === name)) throw new Ec2Error('InvalidLaunchTemplateName.AlreadyExistsException', `Launch template name already in use: ${name}`)
      const d = sub(p, 'LaunchTemplateData')
      const b64 = str(d, 'UserData')
      let userData: string | undefined
      if (b64 !== undefined) {
        const raw = Buffer.from(b64, 'base64')
        if (raw.toString('base64') !== b64.replace(/\s/g, '')) throw new Ec2Error('InvalidParameterValue', 'Invalid BASE64 encoding of user data.')
        userData = raw.toString('utf8')
      }
      const profile = sub(d, 'IamInstanceProfile')
      const lt: LaunchTemplate = {
        id: `lt-${hex(17)}`,
        name,
        createdAt: this.now(),
        versions: [{
          ...(str(d, 'ImageId') === undefined ? {} : { imageId: str(d, 'ImageId')! }),
          ...(userData === undefined ? {} : { userData }),
          ...(str(d, 'KeyName') === undefined ? {} : { keyName: str(d, 'KeyName')! }),
          ...(profile === undefined ? {} : { iamInstanceProfile: str(profile, 'Arn') ?? str(profile, 'Name')! }),
          securityGroupIds: strings(d, 'SecurityGroupId'),
          metadataTags: str(sub(d, 'MetadataOptions'), 'InstanceMetadataTags') === 'enabled'
        }]
      }
      this.templates.set(lt.id, lt)
      return { launchTemplate: this.templateXml(lt) }
    })
  }

  deleteLaunchTemplate (_region: string, p: Tree): Record<string, Xml> {
    const lt = this.template(p, 'DeleteLaunchTemplate')
    this.templates.delete(lt.id)
    return { launchTemplate: this.templateXml(lt) }
  }

  private version (lt: LaunchTemplate, v: string | undefined): LaunchTemplateData {
    if (v === undefined || v === '$Default') return lt.versions[0]!
    if (v === '$Latest') return lt.versions.at(-1)!
    const d = lt.versions[Number(v) - 1]
    if (d === undefined) throw new Ec2Error('InvalidLaunchTemplateId.VersionNotFound', `Could not find launch template version ${v} of ${lt.name}`)
    return d
  }

  private refusal (type: string, zone: string, market: Market): CapacityRule | undefined {
    return this.refusals.find((r) => (r.type === undefined || r.type === type) && (r.zone === undefined || r.zone === zone) && (r.market === undefined || r.market === market))
  }

  createFleet (region: string, p: Tree): Record<string, Xml> {
    return this.idempotent(p, () => {
      if (str(p, 'Type') !== 'instant') throw new Ec2Error('InvalidParameterValue', `Type ${str(p, 'Type') ?? '(none)'}: the fake EC2 models only instant fleets`)
      const cap = sub(p, 'TargetCapacitySpecification')
      const total = Number(str(cap, 'TotalTargetCapacity'))
      const market: Market = str(cap, 'DefaultTargetCapacityType') === 'on-demand' ? 'on-demand' : 'spot'
      if (!Number.isInteger(total) || total < 1) throw new Ec2Error('InvalidTargetCapacitySpecification', 'TotalTargetCapacity: expected a positive integer')
      const tags: Record<string, string> = {}
      for (const ts of trees(p, 'TagSpecification')) {
        if (str(ts, 'ResourceType') !== 'instance') continue
        for (const tag of trees(ts, 'Tag')) tags[str(tag, 'Key')!] = str(tag, 'Value') ?? ''
      }
      // Every (template, override) candidate, in the order the allocation strategy tries them.
      const candidates: Array<{ lt: LaunchTemplate, data: LaunchTemplateData, version: string, type: string, zone: string, subnetId?: string, imageId?: string, price: number }> = []
      for (const c of trees(p, 'LaunchTemplateConfigs')) {
        const spec = sub(c, 'LaunchTemplateSpecification')
        const lt = this.template(spec, 'LaunchTemplateConfigs.LaunchTemplateSpecification')
        const version = str(spec, 'Version') ?? '$Default'
        const data = this.version(lt, version)
        const overrides = trees(c, 'Overrides')
        for (const o of overrides.length > 0 ? overrides : [{}]) {
          const type = str(o, 'InstanceType')
          if (type === undefined) throw new Ec2Error('MissingParameter', 'Overrides.InstanceType: the fake EC2 needs an instance type in each override')
          const zone = str(o, 'AvailabilityZone') ?? this.zonesOf(region)[0]!
          if (!this.zonesOf(region).includes(zone)) throw new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${zone}] (region ${region} has ${this.zonesOf(region).join(', ')})`)
          const price = market === 'spot' ? this.spotPrice(type, zone) : this.onDemand.get(type) ?? this.opts.defaultOnDemandPrice ?? 0.10
          candidates.push({ lt, data, version, type, zone, price, ...(str(o, 'SubnetId') === undefined ? {} : { subnetId: str(o, 'SubnetId')! }), ...(str(o, 'ImageId') === undefined ? {} : { imageId: str(o, 'ImageId')! }) })
        }
      }
      candidates.sort((a, b) => a.price - b.price)
      const ltao = (c: typeof candidates[number]): Xml => ({
        launchTemplateSpecification: { launchTemplateId: c.lt.id, version: c.version },
        overrides: { instanceType: c.type, availabilityZone: c.zone, subnetId: c.subnetId, imageId: c.imageId }
      })
      const errors: Xml[] = []
      const launched: Xml[] = []
      const reservationId = `r-${hex(17)}`
      let left = total
      for (const c of candidates) {
        if (left === 0) break
        const refused = this.refusal(c.type, c.zone, market)
        if (refused !== undefined) {
          const code = refused.code ?? 'InsufficientInstanceCapacity'
          errors.push({ launchTemplateAndOverrides: ltao(c), lifecycle: market, errorCode: code, errorMessage: market === 'spot' ? 'There is no Spot capacity available that matches your request.' : `We currently do not have sufficient ${c.type} capacity in the Availability Zone you requested (${c.zone}).` })
          continue
        }
        const imageId = c.imageId ?? c.data.imageId
        if (imageId === undefined) throw new Ec2Error('MissingParameter', `launch template ${c.lt.name} has no ImageId and the override gives none`)
        const ids: string[] = []
        for (; left > 0; left--) ids.push(this.launch({ region, zone: c.zone, type: c.type, market, imageId, reservationId, tags, data: c.data, ...(c.subnetId === undefined ? {} : { subnetId: c.subnetId }) }).id)
        launched.push({ launchTemplateAndOverrides: ltao(c), lifecycle: market, instanceIds: ids, instanceType: c.type })
      }
      return { fleetId: `fleet-${randomUUID()}`, errorSet: errors, fleetInstanceSet: launched }
    })
  }

  private launch (l: { region: string, zone: string, type: string, market: Market, imageId: string, reservationId: string, tags: Record<string, string>, data: LaunchTemplateData, subnetId?: string }): InstanceRecord {
    const inst: InstanceRecord = {
      id: `i-${hex(17)}`,
      reservationId: l.reservationId,
      region: l.region,
      zone: l.zone,
      type: l.type,
      market: l.market,
      imageId: l.imageId,
      ...(l.subnetId === undefined ? {} : { subnetId: l.subnetId }),
      ...(l.data.keyName === undefined ? {} : { keyName: l.data.keyName }),
      privateIp: '',
      launchTime: this.now(),
      tags: { ...l.tags },
      userData: l.data.userData ?? '',
      metadataTags: l.data.metadataTags,
      state: 'pending'
    }
    this.instances.set(inst.id, inst)
    const { privateIp, ready } = this.machines.start(inst)
    inst.privateIp = privateIp
    ready.then(() => { if (inst.state === 'pending') inst.state = 'running' }, (err: unknown) => {
      if (inst.state === 'pending') this.terminate(inst, { code: 'Server.InternalError', message: `Server.InternalError: the fake machine did not start: ${(err as Error).message}` })
    })
    return inst
  }

  /** shutting-down at once, terminated when the machine is gone. */
  terminate (inst: InstanceRecord, reason = { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' }): void {
    if (inst.state === 'shutting-down' || inst.state === 'terminated') return
    inst.state = 'shutting-down'
    inst.stateReason = reason
    const done = (): void => { inst.state = 'terminated'; inst.terminatedAt = this.now() }
    this.machines.stop(inst.id).then(done, done)
  }

  private visible (): InstanceRecord[] {
    const keep = this.opts.terminatedVisibleMs ?? 3_600_000
    for (const [id, i] of this.instances) if (i.terminatedAt !== undefined && this.now() - i.terminatedAt > keep) this.instances.delete(id)
    return [...this.instances.values()]
  }

  private instanceXml (i: InstanceRecord): Record<string, Xml> {
    return {
      instanceId: i.id,
      imageId: i.imageId,
      instanceState: { code: STATE_CODE[i.state], name: i.state },
      privateIpAddress: i.state === 'terminated' ? undefined : i.privateIp,
      keyName: i.keyName,
      instanceType: i.type,
      launchTime: iso(i.launchTime),
      placement: { availabilityZone: i.zone, tenancy: 'default' },
      subnetId: i.subnetId,
      // EC2 leaves instanceLifecycle out for on-demand instances.
      instanceLifecycle: i.market === 'spot' ? 'spot' : undefined,
      spotInstanceRequestId: i.market === 'spot' ? `sir-${i.id.slice(2, 10)}` : undefined,
      stateReason: i.stateReason,
      tagSet: Object.entries(i.tags).map(([key, value]) => ({ key, value })),
      metadataOptions: { state: 'applied', httpTokens: 'required', httpEndpoint: 'enabled', instanceMetadataTags: i.metadataTags ? 'enabled' : 'disabled' }
    }
  }

  describeInstances (_region: string, p: Tree): Record<string, Xml> {
    const ids = strings(p, 'InstanceId')
    if (ids.length > 0 && str(p, 'MaxResults') !== undefined) throw new Ec2Error('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults')
    let found = this.visible()
    if (ids.length > 0) {
      const missing = ids.filter((id) => !this.instances.has(id))
      if (missing.length > 0) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID${missing.length > 1 ? 's' : ''} '${missing.join(', ')}' do${missing.length > 1 ? '' : 'es'} not exist`)
      found = found.filter((i) => ids.includes(i.id))
    }
    for (const f of trees(p, 'Filter')) {
      const name = str(f, 'Name') ?? ''
      const values = strings(f, 'Value')
      const field = (i: InstanceRecord): string | undefined => {
        if (name.startsWith('tag:')) return i.tags[name.slice(4)]
        switch (name) {
          case 'instance-state-name': return i.state
          case 'instance-id': return i.id
          case 'availability-zone': return i.zone
          case 'instance-type': return i.type
          case 'instance-lifecycle': return i.market === 'spot' ? 'spot' : undefined
        }
        if (name === 'tag-key') return values.find((v) => v in i.tags)
        throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid (the fake EC2 knows tag:<key>, tag-key, instance-state-name, instance-id, availability-zone, instance-type, instance-lifecycle)`)
      }
      found = found.filter((i) => { const v = field(i); return v !== undefined && values.includes(v) })
    }
    const { items, nextToken } = this.page(found, p)
    // One reservation per launch, as EC2 groups them.
    const byRes = new Map<string, InstanceRecord[]>()
    for (const i of items) byRes.set(i.reservationId, [...(byRes.get(i.reservationId) ?? []), i])
    return {
      reservationSet: [...byRes].map(([reservationId, list]) => ({ reservationId, ownerId: '123456789012', groupSet: [], instancesSet: list.map((i) => this.instanceXml(i)) })),
      nextToken
    }
  }

  terminateInstances (_region: string, p: Tree): Record<string, Xml> {
    const ids = strings(p, 'InstanceId')
    if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId')
    const missing = ids.filter((id) => !this.instances.has(id))
    if (missing.length > 0) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${missing.join(', ')}' does not exist`)
    return {
      instancesSet: ids.map((id) => {
        const inst = this.instances.get(id)!
        const previous = inst.state
        this.terminate(inst)
        return { instanceId: id, currentState: { code: STATE_CODE[inst.state], name: inst.state }, previousState: { code: STATE_CODE[previous], name: previous } }
      })
    }
  }
}

const ACTIONS: Record<string, (this: Ec2, region: string, p: Tree) => Record<string, Xml>> = {
  DescribeAvailabilityZones: Ec2.prototype.describeAvailabilityZones,
  DescribeSpotPriceHistory: Ec2.prototype.describeSpotPriceHistory,
  DescribeLaunchTemplates: Ec2.prototype.describeLaunchTemplates,
  CreateLaunchTemplate: Ec2.prototype.createLaunchTemplate,
  DeleteLaunchTemplate: Ec2.prototype.deleteLaunchTemplate,
  CreateFleet: Ec2.prototype.createFleet,
  DescribeInstances: Ec2.prototype.describeInstances,
  TerminateInstances: Ec2.prototype.terminateInstances
}

export const MODELLED_ACTIONS = Object.keys(ACTIONS)
