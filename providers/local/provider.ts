/**
 * `kind: local`: burst replicas as meshd processes on this machine, the
 * embedded default (a workstation, the demo, the tests).
 *
 * Each instance is a detached `meshd start` (its own session, so it outlives
 * the daemon that launched it) with its own config, state dir, ports and log
 * under `<work_dir>/<key>/`, and a manifest beside them. Everything lives in
 * `work_dir`, nothing only in memory: a new leader on this machine lists,
 * adopts and terminates what an old one launched. The key's directory is
 * created exclusively (mkdir fails if it exists), which makes create()
 * idempotent by key across processes; the manifest stays after the process
 * is gone, so a deleted key never comes back as a second instance.
 *
 * Limitation: it sees the processes of the machine it runs on, i.e. the
 * leader's. Burst members launched from another host still appear in the
 * mesh (their heartbeats carry their instance), retire themselves (ttl,
 * idle_timeout, lost_mesh_grace), and drain when asked.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import { MeshdProcess } from '../../daemon/local/meshd-process.ts'
import {
  InsufficientCapacityError, NotFoundError, type Instance, type InstanceState, type LaunchRequest, type Offering, type Provider
} from '../types.ts'
import { MANIFEST_VERSION, readManifest, writeManifest, type Manifest } from './manifest.ts'
import { isOurProcess, signal } from './liveness.ts'

export interface LocalProviderInit {
  /** providers[].name */
  name: string
  cluster: string
  /** Shared by every daemon on this machine (see defaultWorkDir). */
  workDir: string
  maxInstances: number
  costPerHour: number
  region: string
  /** The launching daemon's swarm key; launched nodes read the same file. */
  swarmKeyFile: string
  /** Config every launched node gets (burst lifecycle, log level ...), under the request's own. */
  defaults?: Record<string, unknown>
  now?: () => number
  /** How long a launched node may take to answer on its admin socket. @default 30000 */
  startTimeoutMs?: number
}

/** A node asked to stop is killed (its whole process group) if it still runs after this. */
export const STOP_GRACE_MS = 180_000
/** Directories of instances gone this long are removed (their manifest is kept). */
export const PRUNE_AFTER_MS = 24 * 3_600_000

export function defaultWorkDir (cluster: string, provider: string): string {
  // /var/tmp survives reboots less often than /tmp is cleaned, and is writable by any user.
  const base = process.getuid?.() === 0 ? '/var/tmp' : tmpdir()
  return join(base, 'meshd', cluster, provider)
}

export function localProvider (init: LocalProviderInit): LocalProvider {
  return new LocalProvider(init)
}

export class LocalProvider implements Provider {
  readonly name: string
  readonly kind = 'local' as const
  private readonly init: LocalProviderInit
  private readonly now: () => number
  private readonly dir: string
  /** create() calls in flight in this process, by key: concurrent creates of one key share one. */
  private readonly creating = new Map<string, Promise<Instance>>()

  constructor (init: LocalProviderInit) {
    this.init = init
    this.name = init.name
    this.now = init.now ?? Date.now
    this.dir = resolve(init.workDir)
  }

  async offerings (): Promise<Offering[]> {
    const running = this.live().length
    return [{
      provider: this.name,
      kind: 'local',
      region: this.init.region,
      spot: false,
      pricePerHour: this.init.costPerHour,
      available: running < this.init.maxInstances,
      capacity: Math.max(0, this.init.maxInstances - running)
    }]
  }

  create (req: LaunchRequest): Promise<Instance> {
    const inflight = this.creating.get(req.key)
    if (inflight !== undefined) return inflight
    const p = this.doCreate(req).finally(() => { this.creating.delete(req.key) })
    this.creating.set(req.key, p)
    return p
  }

  async delete (id: string): Promise<void> {
    const found = this.find(id)
    if (found === null) throw new NotFoundError(this.name, id)
    const { dir, m } = found
    if (!this.alive(m)) {
      this.markGone(dir, m)
      throw new NotFoundError(this.name, id)
    }
    // SIGTERM: the node drains (no new requests, those in flight finish) and exits 0.
    signal(m.pid!, 'SIGTERM')
    if (m.stop_requested_at === null) writeManifest(dir, { ...m, stop_requested_at: this.now() })
    else this.escalate(dir, m)
  }

  async get (id: string): Promise<Instance> {
    const found = this.find(id)
    if (found === null) throw new NotFoundError(this.name, id)
    const inst = this.observe(found.dir, found.m)
    if (inst === null) throw new NotFoundError(this.name, id)
    return inst
  }

  async list (): Promise<Instance[]> {
    return this.live()
  }

  // ----------------------------------------------------------------------

  private async doCreate (req: LaunchRequest): Promise<Instance> {
    const dir = join(this.dir, safeName(req.key))
    mkdirSync(this.dir, { recursive: true, mode: 0o750 })
    try {
      mkdirSync(dir, { mode: 0o750 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      return this.existing(dir, req.key)
    }
    if (this.live().length >= this.init.maxInstances) {
      rmSync(dir, { recursive: true, force: true })
      throw new InsufficientCapacityError(this.name, `${this.name}: max_instances ${this.init.maxInstances} reached`, req.offering)
    }
    const id = `local-${safeName(req.key)}`
    const configPath = join(dir, 'meshd.yaml')
    const socket = join(dir, 'admin.sock')
    const launchedAt = this.now()
    const manifest: Manifest = {
      v: MANIFEST_VERSION, key: req.key, id, cluster: req.cluster, provider: this.name, region: req.offering.region, pid: null,
      config: configPath, launched_at: launchedAt, price_per_hour: req.offering.pricePerHour, stop_requested_at: null, terminated_at: null, address: null
    }
    // The manifest goes first: a crash between here and the spawn leaves a
    // key that is remembered (and reported terminated), never a stray process.
    writeManifest(dir, manifest)
    const config = merge(merge(merge({
      cluster: req.cluster,
      node_name: req.node.name,
      state_dir: join(dir, 'state'),
      swarm_key_file: resolve(this.init.swarmKeyFile),
      voter: false,
      provider: this.name,
      region: req.offering.region,
      mesh: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: req.bootstrap.peers },
      http: { listen: '127.0.0.1:0' },
      admin: { socket },
      replica: {
        ...req.replica,
        readiness_probe: { path: '/health', initial_delay_seconds: 120, timeout_seconds: 5, period_seconds: 1 }
      }
    }, this.init.defaults ?? {}), req.node.config), {
      instance: { provider: this.name, id, key: req.key, launched_at: launchedAt }
    })
    writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o640 })
    const proc = new MeshdProcess({
      name: req.node.name, configPath, socket, detached: true, logFile: join(dir, 'meshd.log'), startTimeoutMs: this.init.startTimeoutMs ?? 30_000,
      // Recorded the moment it exists: a launcher killed while the node starts
      // leaves a process that the next leader finds, not an orphan.
      onSpawn: (pid) => { writeManifest(dir, { ...manifest, pid }) }
    })
    try {
      const info = await proc.start()
      writeManifest(dir, { ...manifest, pid: info.pid, address: info.addrs[0] ?? null })
      return this.instance({ ...manifest, pid: info.pid }, 'pending')
    } catch (err) {
      if (proc.pid !== undefined) signal(proc.pid, 'SIGKILL', true)
      writeManifest(dir, { ...manifest, pid: proc.pid ?? null, terminated_at: this.now() })
      throw new Error(`${this.name}: the node for ${req.key} did not start: ${(err as Error).message} (log: ${join(dir, 'meshd.log')})`)
    }
  }

  /** create() of a key that already has a directory: its instance, terminated or not. */
  private async existing (dir: string, key: string): Promise<Instance> {
    // Another process may be between mkdir and writing the manifest: give it a moment.
    let m: Manifest | null = null
    for (let i = 0; i < 100 && m === null; i++) {
      m = readManifest(dir)
      if (m === null) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    if (m === null) throw new Error(`${this.name}: ${dir} exists without a readable manifest; move it away to reuse key ${key}`)
    if (m.pid === null && m.terminated_at === null) {
      // Its creator is still starting it: wait for the pid (or the failure).
      for (let i = 0; i < 600 && m !== null && m.pid === null && m.terminated_at === null; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        m = readManifest(dir)
      }
      if (m === null) throw new Error(`${this.name}: the manifest of ${key} vanished`)
    }
    return this.observe(dir, m) ?? this.instance(m, 'terminated')
  }

  private find (id: string): { dir: string, m: Manifest } | null {
    for (const { dir, m } of this.manifests()) if (m.id === id) return { dir, m }
    return null
  }

  private manifests (): Array<{ dir: string, m: Manifest }> {
    let names: string[]
    try {
      names = readdirSync(this.dir)
    } catch {
      return []
    }
    const out: Array<{ dir: string, m: Manifest }> = []
    for (const n of names) {
      const dir = join(this.dir, n)
      const m = readManifest(dir)
      if (m !== null && m.provider === this.name && m.cluster === this.init.cluster) out.push({ dir, m })
    }
    return out
  }

  /** Everything of this cluster still running; marks what is gone, escalates stuck stops, prunes old dirs. */
  private live (): Instance[] {
    const out: Instance[] = []
    for (const { dir, m } of this.manifests()) {
      const inst = this.observe(dir, m)
      if (inst !== null) out.push(inst)
      else this.prune(dir, m)
    }
    return out
  }

  /** The instance as it is now, or null when its process is gone (recorded as terminated). */
  private observe (dir: string, m: Manifest): Instance | null {
    if (m.terminated_at !== null) return null
    if (m.pid === null) {
      // Being started by another process right now: report it pending.
      return this.now() - m.launched_at < (this.init.startTimeoutMs ?? 30_000) + 5000 ? this.instance(m, 'pending') : (this.markGone(dir, m), null)
    }
    if (!this.alive(m)) {
      this.markGone(dir, m)
      return null
    }
    if (m.stop_requested_at !== null) {
      this.escalate(dir, m)
      return this.instance(m, 'stopping')
    }
    return this.instance(m, 'running')
  }

  private alive (m: Manifest): boolean {
    return isOurProcess(m.pid, m.config)
  }

  private escalate (dir: string, m: Manifest): void {
    if (m.stop_requested_at !== null && m.pid !== null && this.now() - m.stop_requested_at > STOP_GRACE_MS) {
      signal(m.pid, 'SIGKILL', true)
      signal(m.pid, 'SIGKILL')
      writeManifest(dir, { ...m, terminated_at: this.now() })
    }
  }

  private markGone (dir: string, m: Manifest): void {
    if (m.terminated_at === null) writeManifest(dir, { ...m, terminated_at: this.now() })
  }

  /** Long-gone instances lose their state and logs; their manifest (the remembered key) stays. */
  private prune (dir: string, m: Manifest): void {
    if (m.terminated_at === null || this.now() - m.terminated_at < PRUNE_AFTER_MS) return
    try {
      if (statSync(join(dir, 'state'), { throwIfNoEntry: false }) === undefined) return
      rmSync(join(dir, 'state'), { recursive: true, force: true })
      rmSync(join(dir, 'meshd.log'), { force: true })
    } catch {}
  }

  private instance (m: Manifest, state: InstanceState): Instance {
    const out: Instance = {
      id: m.id,
      key: m.key,
      provider: this.name,
      region: m.region,
      spot: false,
      state,
      launchedAt: m.launched_at,
      pricePerHour: m.price_per_hour
    }
    if (m.address !== null) out.address = m.address
    return out
  }
}

function safeName (key: string): string {
  return key.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120)
}

/** Deep merge of plain objects; arrays and scalars of `over` replace. */
function merge (base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    const b = out[k]
    out[k] = isPlain(b) && isPlain(v) ? merge(b, v) : v
  }
  return out
}

function isPlain (x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x)
}
