/**
 * A mesh of real meshd daemons on this machine: the one builder behind
 * `meshd demo`, the benchmarks and the end-to-end tests. One directory, one
 * swarm key, a config per node (loopback, OS-chosen ports: mesh and HTTP
 * listen on port 0, the actual ones come from the daemon's `info`), each a
 * `meshd start` child (meshd-process.ts); joined in a chain (each only to
 * the one before it) or a star (each to the first); waits until every node
 * lists every other alive and until all agree on one leader; stops them all
 * (SIGTERM, they drain) or kills every process group (on failure or exit).
 *
 *   const c = new LocalCluster({ label: 'bench-mesh' })
 *   try {
 *     const nodes = await c.startAll([{ name: 'a' }, { name: 'b' }, { name: 'c' }], { join: 'chain' })
 *     await c.waitAllAlive(nodes, { timeoutMs: 5000 })
 *     const { value: { leader } } = await c.waitLeader(nodes, { voters: 3, timeoutMs: 10_000 })
 *   } finally { await c.stop() }
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateSwarmKey } from '../../mesh/swarm-key.ts'
import type { StatusDocument } from '../status.ts'
import { MeshdProcess, type LogLine } from './meshd-process.ts'
import { waitFor } from './poll.ts'

export type Topology = 'chain' | 'star'

export interface LocalClusterInit {
  /** Names a new temp dir, `meshd-<label>-XXXXXX`, removed by stop(). */
  label?: string
  /** Use this directory instead (never removed here: its owner removes it). */
  dir?: string
  /** Use this swarm key; without it a new one is written into the directory. */
  swarmKeyFile?: string
  /** `cluster:` of every node unless its spec says otherwise. @default 'local' */
  cluster?: string
  /** `log.level` of every node; the daemon's default when unset. */
  logLevel?: string
  /** `mesh.heartbeat_ms` of every node; the daemon's default when unset. */
  heartbeatMs?: number
  /** Also write each node's output to `<dir>/<name>/meshd.log`. */
  logToFile?: boolean
}

export interface NodeSpec {
  name: string
  /** Top-level keys replace the generated ones. */
  config?: Record<string, unknown>
  /** Another cluster name than the cluster's (a stranger with the same key). */
  cluster?: string
  /** Another swarm key than the cluster's (an intruder). */
  swarmKeyFile?: string
  heartbeatMs?: number
  env?: Record<string, string | undefined>
  /** Run under this command (e.g. `ip netns exec <ns>`), listening on `host`. */
  prefix?: string[]
  /** @default 127.0.0.1 */
  host?: string
  onLog?: (line: LogLine) => void
}

export interface StartAllOptions {
  /** Join each node as it comes up: to the one before it, or to the first. Unjoined when unset. */
  join?: Topology
  /** @default 15 s */
  joinTimeoutMs?: number
  /** Stop starting more nodes (the ones up are returned). */
  signal?: AbortSignal
  /** Each node once it is up (and joined), with the node it joined through. */
  onUp?: (node: MeshdProcess, joinedThrough: MeshdProcess | undefined) => void
}

export interface WaitOpts {
  timeoutMs: number
  intervalMs?: number
  signal?: AbortSignal
}

export interface Agreement { leader: string, term: number }

export class LocalCluster {
  readonly dir: string
  readonly swarmKeyFile: string
  /** Every node started, in order (also stopped ones: they can start again). */
  readonly nodes: MeshdProcess[] = []
  private readonly init: LocalClusterInit
  private readonly ownsDir: boolean

  constructor (init: LocalClusterInit = {}) {
    this.init = init
    this.ownsDir = init.dir === undefined
    this.dir = init.dir ?? mkdtempSync(join(tmpdir(), `meshd-${init.label ?? 'local'}-`))
    if (init.swarmKeyFile !== undefined) this.swarmKeyFile = init.swarmKeyFile
    else {
      this.swarmKeyFile = join(this.dir, 'swarm.key')
      writeFileSync(this.swarmKeyFile, generateSwarmKey(), { mode: 0o600 })
    }
  }

  /** The config a node gets: the cluster's defaults, then the spec's `config` keys. */
  configOf (spec: NodeSpec): Record<string, unknown> {
    const host = spec.host ?? '127.0.0.1'
    const nodeDir = join(this.dir, spec.name)
    const heartbeatMs = spec.heartbeatMs ?? this.init.heartbeatMs
    return {
      cluster: spec.cluster ?? this.init.cluster ?? 'local',
      node_name: spec.name,
      state_dir: join(nodeDir, 'state'),
      swarm_key_file: spec.swarmKeyFile ?? this.swarmKeyFile,
      ...(this.init.logLevel !== undefined ? { log: { level: this.init.logLevel } } : {}),
      mesh: { listen: [`/ip4/${host}/tcp/0`], ...(heartbeatMs !== undefined ? { heartbeat_ms: heartbeatMs } : {}) },
      http: { listen: `${host}:0` },
      admin: { socket: join(nodeDir, 'admin.sock') },
      ...spec.config
    }
  }

  /** Writes a node's config under `<dir>/<name>/` and starts it; resolves once its admin socket answers. */
  async start (spec: NodeSpec): Promise<MeshdProcess> {
    const nodeDir = join(this.dir, spec.name)
    mkdirSync(nodeDir, { recursive: true })
    const configPath = join(nodeDir, 'meshd.yaml')
    const config = this.configOf(spec)
    writeFileSync(configPath, JSON.stringify(config, null, 2))
    const p = new MeshdProcess({
      name: spec.name,
      configPath,
      socket: (config.admin as { socket: string }).socket,
      ...(this.init.logToFile === true ? { logFile: join(nodeDir, 'meshd.log') } : {}),
      ...(spec.env !== undefined ? { env: spec.env } : {}),
      ...(spec.prefix !== undefined ? { prefix: spec.prefix } : {}),
      ...(spec.onLog !== undefined ? { onLog: spec.onLog } : {})
    })
    // Known before it runs, so that kill() takes it also when start() fails half-way.
    this.nodes.push(p)
    await p.start()
    return p
  }

  /** Starts nodes one after another; with `join`, each is joined as it comes up. */
  async startAll (specs: NodeSpec[], opts: StartAllOptions = {}): Promise<MeshdProcess[]> {
    const out: MeshdProcess[] = []
    for (const spec of specs) {
      if (opts.signal?.aborted === true) break
      const p = await this.start(spec)
      const through = opts.join === undefined ? undefined : joinTarget(out, opts.join)
      if (through !== undefined) await p.call('join', { addrs: [through.joinAddr] }, opts.joinTimeoutMs ?? 15_000)
      out.push(p)
      opts.onUp?.(p, through)
    }
    return out
  }

  /** Joins nodes already running: each to the one before it (chain) or to the first (star). */
  async join (nodes: MeshdProcess[], topology: Topology, timeoutMs = 15_000): Promise<void> {
    for (let i = 1; i < nodes.length; i++) {
      await nodes[i]!.call('join', { addrs: [joinTarget(nodes.slice(0, i), topology)!.joinAddr] }, timeoutMs)
    }
  }

  /** Until every node lists every one of them alive; the time it took. */
  async waitAllAlive (nodes: MeshdProcess[], opts: WaitOpts): Promise<{ ms: number }> {
    const ids = nodes.map((n) => n.info!.peer)
    return waitFor(async () => aliveOn(nodes, ids), { ...opts, what: `all ${nodes.length} alive on every node` })
  }

  /** Until all given nodes name one leader (with `voters` voters; not `not`); that leader, its term and the time it took. */
  async waitLeader (nodes: MeshdProcess[], opts: WaitOpts & { voters?: number, not?: string | null }): Promise<{ value: Agreement, ms: number }> {
    return waitFor(async () => {
      const a = agreedLeader(await statuses(nodes), opts.voters)
      return a !== null && a.leader !== opts.not ? a : null
    }, { timeoutMs: opts.timeoutMs, intervalMs: opts.intervalMs ?? 100, what: `one leader agreed by ${nodes.map((n) => n.init.name).join(', ')}`, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })
  }

  /** SIGTERM every running node (they drain; SIGKILL after `graceMs`); removes the directory if it made it, unless `keep`. */
  async stop (opts: { graceMs?: number, keep?: boolean } = {}): Promise<Array<{ code: number | null, signal: NodeJS.Signals | null }>> {
    const exits = await Promise.all(this.nodes.map(async (p) => p.stop(opts.graceMs)))
    if (this.ownsDir && opts.keep !== true) rmSync(this.dir, { recursive: true, force: true })
    return exits
  }

  /** Last resort (a failure, process exit): kills every node's process group. */
  kill (): void {
    for (const p of this.nodes) p.killGroup()
  }
}

function joinTarget (before: MeshdProcess[], topology: Topology): MeshdProcess | undefined {
  return topology === 'chain' ? before.at(-1) : before[0]
}

/** Anything that answers `status` (a MeshdProcess, a test's DaemonProcess). */
export interface Viewer { status: () => Promise<StatusDocument> }

/** Every node's own status. */
export async function statuses (nodes: Viewer[]): Promise<StatusDocument[]> {
  return Promise.all(nodes.map(async (n) => n.status()))
}

/** The leader every status names (and, with `voters`, with that many voters), or null. */
export function agreedLeader (ss: StatusDocument[], voters?: number): Agreement | null {
  const l = ss[0]?.leader ?? null
  if (l === null) return null
  const agree = ss.every((s) => s.leader === l && (voters === undefined || ((s.election?.voters as string[] | undefined)?.length ?? 0) === voters))
  return agree ? { leader: l, term: ss[0]!.term } : null
}

/** Whether every viewer lists every one of `ids` alive. */
export async function aliveOn (viewers: Viewer[], ids: string[]): Promise<boolean> {
  for (const v of viewers) {
    const alive = new Set((await v.status()).members.filter((m) => m.state === 'alive').map((m) => m.id))
    if (!ids.every((id) => alive.has(id))) return false
  }
  return true
}

/** Whether no viewer lists `id` alive. */
export async function notAliveOn (viewers: Viewer[], id: string): Promise<boolean> {
  for (const v of viewers) {
    if ((await v.status()).members.some((m) => m.id === id && m.state === 'alive')) return false
  }
  return true
}
