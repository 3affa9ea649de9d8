/**
 * The providers of a daemon's config, as Provider objects: `local`, `ssh`
 * and `aws` (providers/local, providers/ssh, providers/aws). A kind this
 * version cannot drive is an unavailable provider that says so on every
 * call, so a config naming it still validates and the leader answers
 * "refused: no offering" rather than crashing.
 *
 * Each kind's implementation is loaded on the first call to that provider
 * (one loader function per kind, `import()` inside it): a daemon whose
 * config has no SSH pool never loads ssh2, a burst node (no providers) loads
 * none, and a cloud SDK stays on disk until a leader asks that cloud.
 */
import type { Config, ProviderConfig } from '../config/schema.ts'
import { ProviderUnavailableError, type Instance, type LaunchRequest, type Offering, type Provider, type ProviderKind } from '../../providers/types.ts'
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { SshProvider } from '../../providers/ssh/index.ts'
import { validateConfig } from '../config/load.ts'
import type { BundleCache } from '../bundle/cache.ts'
import type { Log } from '../log.ts'

export interface ProviderDeps {
  /** Where bundles come from for a pool without `bundle:` (one cache for every pool of the daemon). */
  bundles?: BundleCache
  log?: Log
}

type SshConfig = Extract<ProviderConfig, { kind: 'ssh' }>

export function buildProviders (config: Config, deps: ProviderDeps = {}): Map<string, Provider> {
  const out = new Map<string, Provider>()
  // Made on the first pool launch that needs it, shared by every pool.
  let bundles: Promise<BundleCache> | undefined = deps.bundles === undefined ? undefined : Promise.resolve(deps.bundles)
  const cache = async (): Promise<BundleCache> => await (bundles ??= bundleCache(config, deps.log))
  for (const p of config.providers) out.set(p.name, new LazyProvider(p.name, p.kind, async () => await load(config, p, cache)))
  return out
}

async function load (config: Config, p: ProviderConfig, bundles: () => Promise<BundleCache>): Promise<Provider> {
  if (p.kind === 'local') return await loadLocal(config, p)
  if (p.kind === 'ssh') return await buildSsh(config, p, {}, bundles)
  if (p.kind === 'aws') return await loadAws(config, p)
  // Every kind of the schema is handled above; a kind added to the schema first lands here.
  const other: { name: string, kind: ProviderKind } = p
  return new UnavailableProvider(other.name, other.kind, `the ${other.kind} provider is not implemented in this version of meshd`)
}

/** region → AMI of an aws entry: one id for every region, or the per-region mapping as given. */
export function imageIds (p: Extract<ProviderConfig, { kind: 'aws' }>): Record<string, string> {
  if (p.image_id === undefined) return {}
  const one = p.image_id
  return typeof one === 'string' ? Object.fromEntries(p.regions.map((r) => [r, one])) : { ...one }
}

/** The aws provider of a `kind: aws` entry; the AWS SDK (seconds of start-up on a small machine) loads with it. */
async function loadAws (config: Config, p: Extract<ProviderConfig, { kind: 'aws' }>): Promise<Provider> {
  const aws = await import('../../providers/aws/index.ts')
  return aws.awsProvider({
    name: p.name,
    cluster: config.cluster,
    regions: p.regions,
    instanceTypes: p.instance_types,
    imageIds: imageIds(p),
    ...(p.launch_template === undefined ? {} : { launchTemplate: p.launch_template }),
    subnetIds: p.subnet_ids,
    securityGroupIds: p.security_group_ids,
    spot: p.spot,
    endpoint: p.endpoint,
    zones: p.zones,
    bundle: p.bundle_url === undefined || p.bundle_sha256 === undefined ? null : { url: p.bundle_url, sha256: p.bundle_sha256 },
    installDir: p.install_dir,
    swarmKey: p.swarm_key,
    swarmKeyText: () => readFileSync(config.swarm_key_file, 'utf8'),
    ...(p.iam_instance_profile === undefined ? {} : { iamInstanceProfile: p.iam_instance_profile }),
    ...(p.key_name === undefined ? {} : { keyName: p.key_name }),
    onDemandPrices: p.on_demand_prices,
    priceRefreshMs: p.price_refresh,
    unavailableForMs: p.unavailable_for,
    defaults: burstDefaults(config),
    validateConfig
  })
}

async function loadLocal (config: Config, p: Extract<ProviderConfig, { kind: 'local' }>): Promise<Provider> {
  const [{ localProvider }, { MESHD_BIN }] = await Promise.all([import('../../providers/local/index.ts'), import('../localmesh/meshd-process.ts')])
  return localProvider({
    name: p.name,
    cluster: config.cluster,
    // Under the state dir by default: it survives restarts and is outside
    // systemd's PrivateTmp. Daemons sharing one machine set work_dir to one
    // directory so that any of them, as leader, sees every burst node.
    workDir: p.work_dir ?? join(config.state_dir, 'providers', p.name),
    maxInstances: p.max_instances,
    costPerHour: p.cost_per_hour,
    region: p.region,
    swarmKeyFile: config.swarm_key_file,
    meshdBin: MESHD_BIN,
    validateConfig,
    defaults: burstDefaults(config)
  })
}

/** The daemon's bundle cache, `<state_dir>/bundles/`, logging what it does (a build takes seconds). */
export async function bundleCache (config: Config, log?: Log): Promise<BundleCache> {
  const { BundleCache } = await import('../bundle/cache.ts')
  const l = log?.child({ svc: 'bundles' })
  return new BundleCache({ dir: join(config.state_dir, 'bundles'), ...(l === undefined ? {} : { log: (msg: string) => { l.info(msg) } }) })
}

/** `~/` in a configured path is the home directory (ssh's own convention, and the README's example). */
export function expandHome (path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path
}

/** The ssh provider of a `kind: ssh` entry (also what `meshd pool` drives). */
export async function buildSsh (config: Config, p: SshConfig, timeouts: { connectTimeoutMs?: number, commandTimeoutMs?: number } = {}, bundles?: () => Promise<BundleCache>): Promise<SshProvider> {
  const { sshProvider } = await import('../../providers/ssh/index.ts')
  const bundle = p.bundle === undefined ? undefined : expandHome(p.bundle)
  let own: Promise<BundleCache> | undefined
  const cache = bundles ?? (async () => await (own ??= bundleCache(config)))
  return sshProvider({
    name: p.name,
    cluster: config.cluster,
    user: p.user,
    ...(p.identity_file === undefined ? {} : { identityFile: expandHome(p.identity_file) }),
    knownHostsFile: expandHome(p.known_hosts),
    installDir: p.install_dir,
    region: p.region,
    costPerHour: p.cost_per_hour,
    maxInstances: p.max_instances,
    hosts: p.hosts.map((h) => ({
      ip: h.ip,
      ...(h.port === undefined ? {} : { port: h.port }),
      ...(h.user === undefined ? {} : { user: h.user }),
      ...(h.identity_file === undefined ? {} : { identityFile: expandHome(h.identity_file) }),
      ...(h.install_dir === undefined ? {} : { installDir: h.install_dir }),
      config: h.config
    })),
    // The configured file, else one made on first need (daemon/bundle/cache.ts).
    bundleFor: async (arch) => bundle ?? await (await cache()).bundleFor(arch),
    swarmKeyFile: config.swarm_key_file,
    validateConfig,
    defaults: burstDefaults(config),
    ...timeouts
  })
}

/** What every launched node gets from the launching daemon: its log level, burst lifetimes, heartbeat. */
export function burstDefaults (config: Config): Record<string, unknown> {
  return {
    log: { level: config.log.level },
    burst: { ttl: `${Math.round(config.burst.ttl / 1000)}s`, idle_timeout: `${Math.round(config.burst.idle_timeout / 1000)}s`, lost_mesh_grace: `${Math.round(config.burst.lost_mesh_grace / 1000)}s` },
    mesh: { heartbeat_ms: config.mesh.heartbeat_ms }
  }
}

/** A provider kind this version cannot drive: every call says so. */
export class UnavailableProvider implements Provider {
  readonly name: string
  readonly kind: ProviderKind
  private readonly why: string

  constructor (name: string, kind: ProviderKind, why: string) {
    this.name = name
    this.kind = kind
    this.why = why
  }

  async offerings (): Promise<Offering[]> { throw new ProviderUnavailableError(this.name, this.why) }
  async create (): Promise<Instance> { throw new ProviderUnavailableError(this.name, this.why) }
  async delete (): Promise<void> { throw new ProviderUnavailableError(this.name, this.why) }
  async get (): Promise<Instance> { throw new ProviderUnavailableError(this.name, this.why) }
  async list (): Promise<Instance[]> { throw new ProviderUnavailableError(this.name, this.why) }
}

/** A provider whose implementation is loaded on its first call (its kind's module and dependencies). */
export class LazyProvider implements Provider {
  readonly name: string
  readonly kind: ProviderKind
  private readonly loader: () => Promise<Provider>
  private loaded: Promise<Provider> | null = null

  constructor (name: string, kind: ProviderKind, loader: () => Promise<Provider>) {
    this.name = name
    this.kind = kind
    this.loader = loader
  }

  private impl (): Promise<Provider> {
    if (this.loaded === null) {
      const p = this.loader()
      this.loaded = p
      // A load that failed (a module missing from a broken install) is tried again on the next call.
      p.catch(() => { if (this.loaded === p) this.loaded = null })
    }
    return this.loaded
  }

  async offerings (): Promise<Offering[]> { return await (await this.impl()).offerings() }
  async create (req: LaunchRequest): Promise<Instance> { return await (await this.impl()).create(req) }
  async delete (id: string): Promise<void> { await (await this.impl()).delete(id) }
  async get (id: string): Promise<Instance> { return await (await this.impl()).get(id) }
  async list (): Promise<Instance[]> { return await (await this.impl()).list() }
}
