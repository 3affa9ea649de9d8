/**
 * The one interface every kind of burst capacity implements: local meshd
 * processes, an SSH pool of bare hosts, AWS EC2, later Kubernetes.
 *
 * Shaped like Karpenter's CloudProvider: a handful of verbs, each saying what
 * it must do at the edges, prices as plain data, and typed errors with guards
 * so the launcher handles every case by name. The leader never calls these
 * verbs from its decision logic (daemon/leader/plan/decide.ts is pure); the
 * launcher calls them after the decision's ledger entries are committed.
 *
 * Every implementation runs the compliance suite in
 * test/providers/compliance.ts.
 */

/** The kinds of capacity meshd knows; `fake` is the test double. */
export type ProviderKind = 'local' | 'ssh' | 'aws' | 'k8s' | 'fake'

/**
 * One way to get one more replica, with its price. Plain data, as Karpenter's
 * Offering: the leader ranks offerings and the budget charges `pricePerHour`
 * from the moment it decides to launch one.
 */
export interface Offering {
  /** The provider's name in the config (`providers[].name`), not its kind. */
  provider: string
  kind: ProviderKind
  /** AWS region; `local` for local processes; the pool's region for SSH. */
  region: string
  /** Availability zone, when the provider has them; placement spreads over zones. */
  zone?: string
  instanceType?: string
  spot: boolean
  /**
   * Dollars per hour the budget charges for one instance. A local process or
   * an SSH pool host costs its provider's `cost_per_hour` (often 0: already
   * paid monthly); a cloud offering its current market price.
   */
  pricePerHour: number
  /** False when this offering cannot be had now (spot capacity gone, pool full). */
  available: boolean
  /** How many more can be had here, when the provider knows (free pool hosts). */
  capacity?: number
}

/** What the provider says of an instance; the leader's own lifecycle is richer (ledger.ts). */
export type InstanceState = 'pending' | 'running' | 'stopping' | 'terminated'

export interface Instance {
  /** The provider's id: EC2 instance id, `host:port` of a pool host, a pid-based id locally. */
  id: string
  /**
   * The idempotency key it was created with, read back from its tag. An
   * instance carrying this cluster's tag but no key (made by hand) reports
   * `<provider>:<id>` so the leader can still adopt it.
   */
  key: string
  /** The provider's name in the config. */
  provider: string
  region: string
  zone?: string
  spot: boolean
  instanceType?: string
  state: InstanceState
  /** Epoch ms at which the provider started it (billing starts here). */
  launchedAt: number
  pricePerHour: number
  /** Where its meshd listens, when known (for logs; members find each other by gossip). */
  address?: string
}

/** What a launched node serves: its `replica:` config section. */
export interface ReplicaSpec {
  models: string[]
  slots: number
  command: string
  url?: string
  sim?: { ttft_ms: number, tokens_per_second: number, max_tokens: number }
}

export interface LaunchRequest {
  /**
   * Idempotency key, derived by the leader from its decision id and an
   * ordinal. The provider tags the instance with it (EC2: ClientToken and a
   * tag; SSH pool: a file on the host; local: the process table).
   */
  key: string
  /** Cluster name; the provider tags the instance with it so list() finds it. */
  cluster: string
  offering: Offering
  replica: ReplicaSpec
  /** The launched node's meshd identity and config overrides (merged into its config file). */
  node: { name: string, config: Record<string, unknown> }
  /** Multiaddrs of current members the new node dials to join the mesh. */
  bootstrap: { peers: string[] }
}

/**
 * A source of burst capacity. Every method may reject with
 * ProviderUnavailableError when the provider's API cannot be reached; the
 * launcher retries later and the leader reconciles against list().
 */
export interface Provider {
  /** The provider's name in the config (`providers[].name`). */
  readonly name: string
  readonly kind: ProviderKind

  /**
   * What can be launched now and at what price. Offerings that cannot be had
   * right now are returned with `available: false` rather than left out, so
   * the leader can say why it did not use them.
   */
  offerings (): Promise<Offering[]>

  /**
   * Launches one instance for `req.offering`, tagged with `req.cluster` and
   * `req.key`. Resolves once the instance exists at the provider (it may
   * still be `pending`); it does not wait for meshd on it to join the mesh.
   *
   * Idempotent by `req.key`: creating the same key again, even concurrently,
   * resolves to the instance made for it, never a second one. That holds
   * after it was deleted or vanished too: the call then resolves to it in
   * state `terminated` (as EC2's ClientToken does). A new leader re-issues a
   * launch whose outcome it never saw, and an instance that died in between
   * must not come back as a second one. Local and SSH providers remember the
   * keys they used (the state dir, a file on the host).
   *
   * Rejects with InsufficientCapacityError when this offering cannot be had
   * (spot capacity gone, pool full, offering no longer offered): the launcher
   * then tries the next offering. QuotaError when an account limit forbids it.
   */
  create (req: LaunchRequest): Promise<Instance>

  /**
   * Begins termination. Resolves once the provider has accepted it; the
   * instance may then show as `stopping` in get()/list() until it is gone.
   * Deleting an instance that is already stopping resolves again.
   * Rejects with NotFoundError when the instance is unknown or already
   * terminated: the launcher records it as terminated (the goal is reached).
   */
  delete (id: string): Promise<void>

  /** The instance with this id. Rejects with NotFoundError when unknown or terminated. */
  get (id: string): Promise<Instance>

  /**
   * Everything not terminated that carries this cluster's tag, whoever made
   * it: the truth the leader reconciles its ledger against. Instances of
   * other clusters are never listed.
   *
   * All or nothing: when part of the provider cannot be read (a pool host
   * down, one region's API failing), reject with ProviderUnavailableError
   * naming that part rather than return the rest. A partial list makes a
   * live instance look gone, and the leader would record it vanished and
   * launch a replacement: a second instance once that part answers again.
   */
  list (): Promise<Instance[]>
}

// ---------------------------------------------------------------------------
// Typed errors. Guards test a `code` string rather than `instanceof`, so an
// error still matches when it crossed a module copy or a structured clone.

export const NOT_FOUND = 'MESHD_PROVIDER_NOT_FOUND'
export const INSUFFICIENT_CAPACITY = 'MESHD_PROVIDER_INSUFFICIENT_CAPACITY'
export const QUOTA = 'MESHD_PROVIDER_QUOTA'
export const PROVIDER_UNAVAILABLE = 'MESHD_PROVIDER_UNAVAILABLE'

export type ProviderErrorCode = typeof NOT_FOUND | typeof INSUFFICIENT_CAPACITY | typeof QUOTA | typeof PROVIDER_UNAVAILABLE

export class ProviderError extends Error {
  readonly code: ProviderErrorCode
  /** The provider's name in the config. */
  readonly provider: string

  constructor (code: ProviderErrorCode, provider: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.provider = provider
  }
}

/** The instance is unknown or already terminated. */
export class NotFoundError extends ProviderError {
  readonly id: string
  constructor (provider: string, id: string, options?: ErrorOptions) {
    super(NOT_FOUND, provider, `${provider}: instance ${id} not found`, options)
    this.name = 'NotFoundError'
    this.id = id
  }
}

/** This offering cannot be had now (spot gone, pool full): try the next one. */
export class InsufficientCapacityError extends ProviderError {
  readonly offering: Offering | undefined
  constructor (provider: string, message: string, offering?: Offering, options?: ErrorOptions) {
    super(INSUFFICIENT_CAPACITY, provider, message, options)
    this.name = 'InsufficientCapacityError'
    this.offering = offering
  }
}

/** An account limit (vCPU quota, instance limit) forbids it; other offerings of the provider likely fail too. */
export class QuotaError extends ProviderError {
  constructor (provider: string, message: string, options?: ErrorOptions) {
    super(QUOTA, provider, message, options)
    this.name = 'QuotaError'
  }
}

/** The provider's API cannot be reached or answered with a server error; retry later. */
export class ProviderUnavailableError extends ProviderError {
  constructor (provider: string, message: string, options?: ErrorOptions) {
    super(PROVIDER_UNAVAILABLE, provider, message, options)
    this.name = 'ProviderUnavailableError'
  }
}

function hasCode (e: unknown, code: ProviderErrorCode): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code
}

export function isProviderError (e: unknown): e is ProviderError {
  return hasCode(e, NOT_FOUND) || hasCode(e, INSUFFICIENT_CAPACITY) || hasCode(e, QUOTA) || hasCode(e, PROVIDER_UNAVAILABLE)
}
export function isNotFoundError (e: unknown): e is NotFoundError { return hasCode(e, NOT_FOUND) }
export function isInsufficientCapacityError (e: unknown): e is InsufficientCapacityError { return hasCode(e, INSUFFICIENT_CAPACITY) }
export function isQuotaError (e: unknown): e is QuotaError { return hasCode(e, QUOTA) }
export function isProviderUnavailableError (e: unknown): e is ProviderUnavailableError { return hasCode(e, PROVIDER_UNAVAILABLE) }

// ---------------------------------------------------------------------------
// Offering identity, shared by the providers, the ledger and placement.

/**
 * A stable id for an offering: provider, region, zone, type and market.
 * Prices change; this does not, so the ledger and the price list meet on it.
 */
export function offeringId (o: Pick<Offering, 'provider' | 'region' | 'zone' | 'instanceType' | 'spot'>): string {
  return `${o.provider}/${o.region}/${o.zone ?? '-'}/${o.instanceType ?? '-'}/${o.spot ? 'spot' : 'on-demand'}`
}
