/**
 * The providers of a daemon's config, as Provider objects. `local` is
 * implemented here; `ssh` and `aws` come as their own folders under
 * providers/. Until one exists, its entry is an unavailable provider that
 * says so on every call, so a config naming it still validates and the
 * leader answers "refused: no offering" rather than crashing.
 */
import type { Config, ProviderConfig } from '../config/schema.ts'
import { ProviderUnavailableError, type Instance, type Offering, type Provider, type ProviderKind } from '../../providers/types.ts'
import { join } from 'node:path'
import { localProvider } from '../../providers/local/index.ts'
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
      defaults: {
        log: { level: config.log.level },
        burst: { ttl: `${Math.round(config.burst.ttl / 1000)}s`, idle_timeout: `${Math.round(config.burst.idle_timeout / 1000)}s`, lost_mesh_grace: `${Math.round(config.burst.lost_mesh_grace / 1000)}s` },
        mesh: { heartbeat_ms: config.mesh.heartbeat_ms }
      }
    })
  }
  return new UnavailableProvider(p.name, p.kind, `the ${p.kind} provider is not implemented in this version of meshd (only local is)`)
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
