/**
 * The config file of a launched burst node (local process or pool host), as
 * a pure function of the launch request and the provider's settings. Layers, each merged over the one
 * before (objects merge key by key, anything else — lists included — is
 * replaced):
 *
 *   1. what a burst node needs: listeners on OS-chosen ports (loopback
 *      for a local node, the host's address for a pool host), its own state dir and admin socket, the launcher's swarm key,
 *      bootstrap peers, the replica, price and placement;
 *   2. the provider's `defaults` (burst ttl / idle_timeout, log level …);
 *   3. the request's `node.config` (providers[].config plus what the leader
 *      adds).
 *
 * Then the keys that make it this instance are set and cannot be overridden:
 * `cluster`, `state_dir`, `admin.socket`, `voter: false` (a burst node never
 * votes) and `instance` (provider, id, key, launched_at).
 */
import type { LaunchRequest, ReplicaSpec } from './types.ts'

export interface NodeConfigInput {
  /** The provider's config name. */
  provider: string
  region: string
  costPerHour: number
  swarmKeyFile: string
  stateDir: string
  socket: string
  id: string
  launchedAt: number
  req: LaunchRequest
  defaults: Record<string, unknown>
  /** Where it listens. @default loopback, OS-chosen ports (a node on the launcher's machine) */
  listen?: { mesh: string[], http: string }
}

/** How long the node may take to stop after SIGTERM when its config does not say (meshd's http.drain_timeout default). */
export const DEFAULT_DRAIN_MS = 120_000

export function isPlainObject (v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

/** `over` merged into `base`: plain objects key by key, anything else replaced. Neither argument is changed. */
export function deepMerge (base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue
    const b = out[k]
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : clone(v)
  }
  return out
}

function clone (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clone)
  if (isPlainObject(v)) return deepMerge({}, v)
  return v
}

/**
 * The node's `replica:` section. The readiness probe suits an engine on this
 * machine: probed every 2 s (every second until it first passes), 5 s per
 * probe, and a start-up allowance of 30 s for the simulator and 10 minutes
 * for a real engine (loading weights from a local disk into a GPU takes
 * minutes; killing it at SkyServe's 120 s would restart it forever).
 */
export function replicaSection (spec: ReplicaSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {
    models: [...spec.models],
    slots: spec.slots,
    command: spec.command,
    readiness_probe: {
      path: '/health',
      initial_delay_seconds: spec.command === 'sim' ? 30 : 600,
      period_seconds: 2,
      timeout_seconds: 5
    }
  }
  if (spec.url !== undefined) out.url = spec.url
  if (spec.sim !== undefined) out.sim = { ...spec.sim }
  return out
}

export function nodeConfig (i: NodeConfigInput): Record<string, unknown> {
  const base: Record<string, unknown> = {
    cluster: i.req.cluster,
    node_name: i.req.node.name,
    state_dir: i.stateDir,
    swarm_key_file: i.swarmKeyFile,
    voter: false,
    provider: i.provider,
    region: i.region,
    spot: false,
    cost_per_hour: i.costPerHour,
    mesh: { listen: [...(i.listen?.mesh ?? ['/ip4/127.0.0.1/tcp/0'])], bootstrap: [...i.req.bootstrap.peers] },
    http: { listen: i.listen?.http ?? '127.0.0.1:0' },
    replica: replicaSection(i.req.replica)
  }
  const merged = deepMerge(deepMerge(base, i.defaults), i.req.node.config)
  merged.cluster = i.req.cluster
  merged.state_dir = i.stateDir
  merged.voter = false
  merged.admin = deepMerge(isPlainObject(merged.admin) ? merged.admin : {}, { socket: i.socket })
  merged.instance = { provider: i.provider, id: i.id, key: i.req.key, launched_at: Math.floor(i.launchedAt) }
  return merged
}

