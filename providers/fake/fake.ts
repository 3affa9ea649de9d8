/**
 * A provider that keeps its instances in memory, as Karpenter's fake cloud
 * provider does: it records every call, lets a test inject the next error of
 * any verb, honours idempotency by key, and can be told prices and
 * availability. No clock of its own: `now()` is handed in (default 0), so
 * tests and the property simulator stay deterministic.
 */
import {
  InsufficientCapacityError,
  NotFoundError,
  offeringId,
  type Instance,
  type LaunchRequest,
  type Offering,
  type Provider,
  type ProviderKind
} from '../types.ts'

export type FakeVerb = 'offerings' | 'create' | 'delete' | 'get' | 'list'

export interface FakeCall {
  verb: FakeVerb
  /** The argument: the request of create, the id of delete/get. */
  arg?: LaunchRequest | string
  /** Resolved value, or the error it rejected with. */
  ok: boolean
  result?: unknown
  error?: unknown
}

export interface FakeProviderInit {
  name: string
  /** @default 'fake' */
  kind?: ProviderKind
  /** The cluster whose tag list() filters on. @default 'test' */
  cluster?: string
  offerings?: Offering[]
  /** @default () => 0 */
  now?: () => number
  /**
   * Create with a key whose instance was deleted makes a new instance when
   * true: a provider that breaks the contract (providers/types.ts), kept to
   * show what the compliance suite and `createdPerKey` catch. False (the
   * contract, EC2's ClientToken): the old, terminated instance comes back.
   * @default false
   */
  recreateAfterDelete?: boolean
}

interface Stored {
  instance: Instance
  cluster: string
}

export class FakeProvider implements Provider {
  readonly name: string
  readonly kind: ProviderKind
  readonly cluster: string
  /** Every call, in order, with its outcome. */
  readonly calls: FakeCall[] = []
  /** How many distinct instances each key produced (more than 1 is a bug in the caller). */
  readonly createdPerKey = new Map<string, number>()
  now: () => number
  recreateAfterDelete: boolean

  private catalogue: Offering[]
  private readonly stored = new Map<string, Stored>()
  private readonly byKey = new Map<string, string>()
  private readonly injected = new Map<FakeVerb, unknown[]>()
  private serial = 0

  constructor (init: FakeProviderInit) {
    this.name = init.name
    this.kind = init.kind ?? 'fake'
    this.cluster = init.cluster ?? 'test'
    this.catalogue = (init.offerings ?? []).map((o) => ({ ...o }))
    this.now = init.now ?? (() => 0)
    this.recreateAfterDelete = init.recreateAfterDelete ?? false
  }

  // -- test controls --------------------------------------------------------

  /** The next call of `verb` rejects with `error` (queued: call again for the one after). */
  failNext (verb: FakeVerb, error: unknown): void {
    const q = this.injected.get(verb) ?? []
    q.push(error)
    this.injected.set(verb, q)
  }

  setOfferings (offerings: Offering[]): void {
    this.catalogue = offerings.map((o) => ({ ...o }))
  }

  /** Changes the price of matching offerings and of the running instances on them. */
  setPrice (match: (o: Offering) => boolean, pricePerHour: number): void {
    for (const o of this.catalogue) {
      if (!match(o)) continue
      o.pricePerHour = pricePerHour
      const id = offeringId(o)
      for (const s of this.stored.values()) {
        if (s.instance.state !== 'terminated' && offeringId(s.instance) === id) s.instance.pricePerHour = pricePerHour
      }
    }
  }

  setAvailable (match: (o: Offering) => boolean, available: boolean): void {
    for (const o of this.catalogue) if (match(o)) o.available = available
  }

  /** The instance disappears as a reclaimed spot instance does: no delete call. */
  interrupt (id: string): void {
    const s = this.stored.get(id)
    if (s !== undefined) s.instance.state = 'terminated'
  }

  /** Moves an instance to a state (pending → running, say). */
  setState (id: string, state: Instance['state']): void {
    const s = this.stored.get(id)
    if (s !== undefined) s.instance.state = state
  }

  /** Puts an instance in place that nobody created through this fake (an orphan, or another cluster's). */
  seed (instance: Instance, cluster = this.cluster): void {
    this.stored.set(instance.id, { instance: { ...instance }, cluster })
    if (cluster === this.cluster) this.byKey.set(instance.key, instance.id)
  }

  /** Every instance ever made or seeded, terminated ones included (copies). */
  all (): Instance[] {
    return [...this.stored.values()].map((s) => ({ ...s.instance }))
  }

  /** Instances of this cluster that are not terminated (no call recorded). */
  alive (): Instance[] {
    return [...this.stored.values()].filter((s) => s.cluster === this.cluster && s.instance.state !== 'terminated').map((s) => ({ ...s.instance }))
  }

  callsOf (verb: FakeVerb): FakeCall[] {
    return this.calls.filter((c) => c.verb === verb)
  }

  // -- Provider -------------------------------------------------------------

  async offerings (): Promise<Offering[]> {
    return this.run('offerings', undefined, () => this.catalogue.map((o) => ({ ...o })))
  }

  async create (req: LaunchRequest): Promise<Instance> {
    return this.run('create', req, () => {
      const existingId = this.byKey.get(req.key)
      const existing = existingId === undefined ? undefined : this.stored.get(existingId)
      if (existing !== undefined && (existing.instance.state !== 'terminated' || !this.recreateAfterDelete)) {
        return { ...existing.instance }
      }
      const wanted = offeringId(req.offering)
      const offering = this.catalogue.find((o) => offeringId(o) === wanted)
      if (offering === undefined) throw new InsufficientCapacityError(this.name, `${this.name}: offering ${wanted} is not offered`, req.offering)
      if (!offering.available) throw new InsufficientCapacityError(this.name, `${this.name}: no capacity for ${wanted}`, offering)
      if (offering.capacity !== undefined) {
        const used = [...this.stored.values()].filter((s) => s.instance.state !== 'terminated' && offeringId(s.instance) === wanted).length
        if (used >= offering.capacity) throw new InsufficientCapacityError(this.name, `${this.name}: ${wanted} is full (${offering.capacity})`, offering)
      }
      this.serial += 1
      const instance: Instance = {
        id: `${this.name}-${this.serial}`,
        key: req.key,
        provider: this.name,
        region: offering.region,
        spot: offering.spot,
        state: 'running',
        launchedAt: this.now(),
        pricePerHour: offering.pricePerHour
      }
      if (offering.zone !== undefined) instance.zone = offering.zone
      if (offering.instanceType !== undefined) instance.instanceType = offering.instanceType
      this.stored.set(instance.id, { instance, cluster: req.cluster })
      this.byKey.set(req.key, instance.id)
      this.createdPerKey.set(req.key, (this.createdPerKey.get(req.key) ?? 0) + 1)
      return { ...instance }
    })
  }

  async delete (id: string): Promise<void> {
    return this.run('delete', id, () => {
      const s = this.stored.get(id)
      if (s === undefined || s.cluster !== this.cluster || s.instance.state === 'terminated') throw new NotFoundError(this.name, id)
      s.instance.state = 'terminated'
    })
  }

  async get (id: string): Promise<Instance> {
    return this.run('get', id, () => {
      const s = this.stored.get(id)
      if (s === undefined || s.cluster !== this.cluster || s.instance.state === 'terminated') throw new NotFoundError(this.name, id)
      return { ...s.instance }
    })
  }

  async list (): Promise<Instance[]> {
    return this.run('list', undefined, () => this.alive())
  }

  /** Runs one verb: an injected error first, else the body; records the outcome. */
  private run<T> (verb: FakeVerb, arg: LaunchRequest | string | undefined, body: () => T): T {
    const call: FakeCall = { verb, ok: false }
    if (arg !== undefined) call.arg = arg
    this.calls.push(call)
    const q = this.injected.get(verb)
    if (q !== undefined && q.length > 0) {
      call.error = q.shift()
      throw call.error
    }
    try {
      const result = body()
      call.ok = true
      call.result = result
      return result
    } catch (e) {
      call.error = e
      throw e
    }
  }
}
