/**
 * The providers of a daemon's config, as Provider objects: `local`, `ssh`
 * and `aws` (providers/local, providers/ssh, providers/aws). A kind this
 * version cannot drive is an unavailable provider that says so on every
 * call, so a config naming it still validates and the leader answers
 * "refused: no offering" rather than crashing.
 */
import type { Config, ProviderConfig } from '../config/schema.ts'
import { ProviderUnavailableError, type Instance, type Offering, type Provider, type ProviderKind } from '../../providers/types.ts'
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { localProvider } from '../../providers/local/index.ts'
import { sshProvider, type SshProvider } from '../../providers/ssh/index.ts'
import { MESHD_BIN } from '../localmesh/meshd-process.ts'
import { validateConfig } from '../config/load.ts'

export function buildProviders (config: Config): Map<string, Provider> {
  const out = new Map<string, Provider>()
  for (const p of config.providers) out.set(p.name, build(config, p))
  return out
}

function build (config: Config, p: ProviderConfig): Provider {
  if (p.kind === 'local') {
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
  if (p.kind === 'ssh') return buildSsh(config, p)
  if (p.kind === 'aws') return buildAws(config, p)
  // Every kind of the schema is handled above; a kind added to the schema first lands here.
  const other: { name: string, kind: ProviderKind } = p
  return new UnavailableProvider(other.name, other.kind, `the ${other.kind} provider is not implemented in this version of meshd`)
}

/**
 * The aws provider of a `kind: aws` entry. The AWS SDK is heavy (seconds of
 * start-up on a small machine), so it is loaded on the provider's first call:
 * a node that never launches on EC2 never loads it.
 */
/** region → AMI of an aws entry: one id for every region, or the per-region mapping as given. */
export function imageIds (p: Extract<ProviderConfig, { kind: 'aws' }>): Record<string, string> {
  if (p.image_id === undefined) return {}
  const one = p.image_id
  return typeof one === 'string' ? Object.fromEntries(p.regions.map((r) => [r, one])) : { ...one }
}

export function buildAws (config: Config, p: Extract<ProviderConfig, { kind: 'aws' }>): Provider {
  let made: Promise<Provider> | null = null
  const load = async (): Promise<Provider> => {
    made ??= import('../../providers/aws/index.ts').then((aws) => aws.awsProvider({
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
    }))
    made.catch(() => { made = null })
    return await made
  }
  return {
    name: p.name,
    kind: 'aws',
    offerings: async () => await (await load()).offerings(),
    create: async (req) => await (await load()).create(req),
    delete: async (id) => { await (await load()).delete(id) },
    get: async (id) => await (await load()).get(id),
    list: async () => await (await load()).list()
  }
}

/** `~/` in a configured path is the home directory (ssh's own convention, and the README's example). */
export function expandHome (path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path
}

/** The ssh provider of a `kind: ssh` entry (also what `meshd pool` drives). */
export function buildSsh (config: Config, p: Extract<ProviderConfig, { kind: 'ssh' }>, timeouts: { connectTimeoutMs?: number, commandTimeoutMs?: number } = {}): SshProvider {
  const bundle = p.bundle === undefined ? undefined : expandHome(p.bundle)
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
    bundleFor: async (arch) => {
      if (bundle === undefined) throw new Error(`providers[${p.name}].bundle is not set: build one with \`meshd bundle --arch ${arch}\` and set it`)
      return bundle
    },
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
