/**
 * `kind: local`: burst replicas as meshd processes on this machine, the
 * embedded default (a workstation, the demo, the tests).
 *
 * Each instance is a detached `meshd start` (its own session, output to its
 * log, so it outlives the daemon that launched it) with its own config,
 * state dir, admin socket and OS-chosen ports under `<work_dir>/<dir>/`
 * (`<dir>` is the key when the key is a safe file name), and a manifest
 * beside them (manifest.ts). Everything lives in `work_dir`, nothing only in
 * memory: a new leader on this machine lists, adopts and terminates what an
 * old one launched, and two daemons using the same provider config see the
 * same instances.
 *
 * - Idempotent by key: the manifest is created with O_EXCL before anything
 *   runs; whoever created it launches, every other create() of the key gets
 *   that instance — also once it is terminated (the manifest stays).
 * - The id is `local-<dir>`: known before the process exists (so the claim
 *   already holds it and a launcher that dies half-way leaves nothing
 *   nameless), stable for the instance's life and after, unique within the
 *   work dir because the key is, and readable next to the node's name.
 *   A pid would be none of these: it is known only after the spawn, and the
 *   kernel hands it out again.
 * - Alive means: the recorded pid runs a command line naming this
 *   instance's config file (liveness.ts), so a reused pid is never mistaken
 *   for it. A process found gone is recorded terminated.
 * - delete(): SIGTERM once (meshd drains and exits 0; a second SIGTERM would
 *   make it exit without draining, so a repeated delete never sends one),
 *   `stopping` until the process is gone. When it still runs after its
 *   grace (its http.drain_timeout + 60 s), the process group is SIGKILLed by
 *   a timer in the process that deleted it, or by whichever later call of
 *   any provider object on the work dir sees it first (list, get, delete,
 *   offerings, create).
 * - Terminated instances keep their manifest (the key is remembered); their
 *   state dir, config and log are removed after a day, the whole directory
 *   after 90 days (longer than the leader's ledger remembers a key).
 *
 * Limitation: it sees the processes of the machine it runs on, i.e. the
 * leader's. Burst members launched from another host still appear in the
 * mesh (their heartbeats carry their instance), retire themselves (ttl,
 * idle_timeout, lost_mesh_grace), and drain when asked.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import {
  InsufficientCapacityError,
  NotFoundError,
  ProviderUnavailableError,
  isProviderError,
  offeringId,
  type Instance,
  type InstanceState,
  type LaunchRequest,
  type Offering,
  type Provider
} from '../types.ts'
import { instanceOf } from '../instance-record.ts'
import { MANIFEST, MANIFEST_VERSION, claimManifest, manifestPath, readManifestFile, writeManifest, type Manifest } from './manifest.ts'
import { findByConfig, killNode, mayBeOurProcess, pidExists, signal } from './liveness.ts'
import { DEFAULT_DRAIN_MS, nodeConfig } from '../node-config.ts'
import { addressFromLog } from '../started-line.ts'
import { SingleFlight } from '../single-flight.ts'

export interface LocalProviderInit {
  /** providers[].name */
  name: string
  cluster: string
  /** providers[].work_dir; shared by every daemon on this machine (see defaultWorkDir). */
  workDir: string
  maxInstances: number
  costPerHour: number
  region: string
  /** The launching daemon's swarm key; launched nodes read the same file. */
  swarmKeyFile: string
  /** Config every launched node gets (burst ttl / idle_timeout, log level …), under the request's own. */
  defaults?: Record<string, unknown>
  /** Epoch ms. @default Date.now */
  now?: () => number
  /** SIGTERM → SIGKILL. @default the node's http.drain_timeout (120 s unless configured) + 60 s */
  stopGraceMs?: number
  /** A terminated instance's state dir, config and log are removed after this. @default 1 day */
  pruneAfterMs?: number
  /** A terminated instance's directory, manifest included, is removed after this (its key forgotten). @default 90 days */
  forgetAfterMs?: number
  /** More environment for launched nodes. This process's MESHD_* overrides are never passed on (they would give every node the same ports and socket). */
  env?: Record<string, string>
  /** The `meshd` executable each node runs (the daemon passes daemon/localmesh/meshd-process.ts's MESHD_BIN). */
  meshdBin: string
  /**
   * meshd's config validation (the daemon passes daemon/config/load.ts's
   * validateConfig): a node's config is checked before it runs, and throws
   * with the reason. Its drain timeout sets the stop grace.
   */
  validateConfig: ValidateNodeConfig
}

/** Validates a node's config as `meshd start` would; throws with the reason, returns what the provider reads. */
export type ValidateNodeConfig = (raw: unknown, file: string) => { http: { drain_timeout: number } }

/** Added to a node's drain allowance before it is SIGKILLed: stopping its replica and leaving the mesh. */
export const STOP_GRACE_EXTRA_MS = 60_000
/** The grace with meshd's default drain_timeout. */
export const STOP_GRACE_MS = DEFAULT_DRAIN_MS + STOP_GRACE_EXTRA_MS
export const PRUNE_AFTER_MS = 24 * 3_600_000
export const FORGET_AFTER_MS = 90 * 24 * 3_600_000
/** A claim without a pid whose launcher is gone, or older than this, is settled: adopted if its node runs, else terminated. */
export const LAUNCH_STALE_MS = 60_000
/** How long create() / delete() wait for another process's launch of the same key. */
export const SETTLE_WAIT_MS = 30_000
/** A node still there after a SIGKILL (uninterruptible sleep) gets another one this often. */
const KILL_REPEAT_MS = 5_000
/** Pruning runs at most this often per provider object. */
const PRUNE_EVERY_MS = 60_000
/** Unix socket paths are limited to 108 bytes. */
const MAX_SOCKET_PATH = 100

export function defaultWorkDir (cluster: string, provider: string): string {
  return join('/var/tmp/meshd', cluster, provider)
}

export function localProvider (init: LocalProviderInit): LocalProvider {
  return new LocalProvider(init)
}

/** The directory of a key: the key itself when it is a safe file name, else a readable part and a hash (never equal to a safe key). */
export function dirName (key: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(key)) return key
  const readable = key.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '').slice(0, 40)
  return `${readable}~${createHash('sha256').update(key).digest('hex').slice(0, 16)}`
}

const ID_PREFIX = 'local-'

type Observed = { m: Manifest, state: InstanceState | 'launching' }

interface Entry { dir: string, observed: Observed | null, unreadable?: { why: string, ageMs: number } }

export class LocalProvider implements Provider {
  readonly name: string
  readonly kind = 'local' as const
  readonly workDir: string
  private readonly init: LocalProviderInit
  private readonly now: () => number
  /** create() calls in flight in this object, by key: concurrent creates of one key share one. */
  private readonly creating = new SingleFlight<Instance>()
  /** Keys this object is launching right now (their claim has no pid yet, and that is fine). */
  private readonly launching = new Set<string>()
  private lastPrune = Number.NEGATIVE_INFINITY

  constructor (init: LocalProviderInit) {
    this.init = init
    this.name = init.name
    this.now = init.now ?? Date.now
    this.workDir = resolve(init.workDir)
  }

  private offering (live: number): Offering {
    return {
      provider: this.name,
      kind: 'local',
      region: this.init.region,
      spot: false,
      pricePerHour: this.init.costPerHour,
      available: live < this.init.maxInstances,
      capacity: Math.max(0, this.init.maxInstances - live)
    }
  }

  async offerings (): Promise<Offering[]> {
    return this.guard(() => [this.offering(this.countLive())])
  }

  create (req: LaunchRequest): Promise<Instance> {
    return this.creating.run(req.key, async () => await this.guard(async () => this.doCreate(req)))
  }

  async delete (id: string): Promise<void> {
    return this.guard(async () => {
      const dir = this.dirOf(id)
      const o = dir === null ? null : await this.settled(dir)
      if (dir === null || o === null || o.m.id !== id || o.m.cluster !== this.init.cluster || o.state === 'terminated') throw new NotFoundError(this.name, id)
      const m = o.m
      if (m.stop_requested_at !== null) return // stopping already; observe() escalates once the grace is over
      // Recorded before the signal: were we to die in between, a later delete
      // must not send a second SIGTERM (meshd exits at once on the second).
      writeManifest(dir, { ...m, stop_requested_at: this.now() })
      signal(m.pid!, 'SIGTERM')
      const timer = setTimeout(() => { void this.get(id).catch(() => {}) }, m.stop_grace_ms + 1000)
      timer.unref()
    })
  }

  async get (id: string): Promise<Instance> {
    return this.guard(() => {
      const dir = this.dirOf(id)
      const o = dir === null ? null : this.observeDir(dir)
      if (o === null || o.m.id !== id || o.m.cluster !== this.init.cluster || o.state === 'terminated') throw new NotFoundError(this.name, id)
      return this.instance(o)
    })
  }

  async list (): Promise<Instance[]> {
    return this.guard(() => {
      const entries = this.scan()
      this.prune(entries)
      const out: Instance[] = []
      for (const e of entries) {
        const o = e.observed
        if (o !== null && o.m.cluster === this.init.cluster && o.state !== 'terminated') out.push(this.instance(o))
      }
      return out.sort((a, b) => a.launchedAt - b.launchedAt || a.id.localeCompare(b.id))
    })
  }

  /**
   * SIGKILLs every live node of the work dir (any cluster) and waits until
   * they are gone (at most `timeoutMs`): for tests and `meshd demo`, not
   * the leader. Returns how many were killed.
   */
  async killAll (timeoutMs = 10_000): Promise<number> {
    const victims = this.scan().flatMap((e) => e.observed !== null && e.observed.m.pid !== null && e.observed.state !== 'terminated' ? [{ dir: e.dir, m: e.observed.m }] : [])
    for (const v of victims) killNode(v.m.pid!)
    const deadline = performance.now() + timeoutMs
    for (const v of victims) {
      while (mayBeOurProcess(v.m.pid, v.m.config) && performance.now() < deadline) await sleep(20)
      this.observeDir(v.dir)
    }
    return victims.length
  }

  /** The manifest of an instance (any state, any cluster), for diagnostics and tests. */
  manifest (id: string): Manifest | null {
    const dir = this.dirOf(id)
    if (dir === null) return null
    const r = readManifestFile(dir)
    return r.kind === 'ok' && r.manifest.id === id ? r.manifest : null
  }

  // -- create ----------------------------------------------------------------

  private async doCreate (req: LaunchRequest): Promise<Instance> {
    const mine = this.offering(0)
    if (offeringId(req.offering) !== offeringId(mine) || req.offering.kind !== 'local') {
      throw new InsufficientCapacityError(this.name, `${this.name}: offering ${offeringId(req.offering)} is not offered (only ${offeringId(mine)})`, req.offering)
    }
    const dir = join(this.workDir, dirName(req.key))
    for (let attempt = 0; attempt < 100; attempt++) {
      mkdirSync(dir, { recursive: true, mode: 0o750 })
      const claim = this.freshManifest(req, dir)
      let claimed: boolean
      try {
        claimed = claimManifest(dir, claim)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue // the directory went with a claim given back: again
        throw e
      }
      if (claimed) return await this.launch(req, dir, claim)
      const o = await this.settled(dir)
      if (o === null) continue // the claim was given back (no capacity, a bad config): try ours
      return this.instance(o)
    }
    throw new ProviderUnavailableError(this.name, `${this.name}: could not claim key ${req.key} in ${dir}`)
  }

  private freshManifest (req: LaunchRequest, dir: string): Manifest {
    const socket = join(dir, 'admin.sock')
    return {
      v: MANIFEST_VERSION,
      key: req.key,
      id: ID_PREFIX + dirName(req.key),
      cluster: req.cluster,
      provider: this.name,
      region: this.init.region,
      node_name: req.node.name,
      launcher_pid: process.pid,
      pid: null,
      config: join(dir, 'meshd.json'),
      log: join(dir, 'meshd.log'),
      socket: socket.length <= MAX_SOCKET_PATH ? socket : join(tmpdir(), `meshd-${createHash('sha256').update(dir).digest('hex').slice(0, 16)}.sock`),
      state_dir: join(dir, 'state'),
      launched_at: Math.floor(this.now()),
      price_per_hour: this.init.costPerHour,
      stop_grace_ms: this.init.stopGraceMs ?? STOP_GRACE_MS,
      running_at: null,
      stop_requested_at: null,
      killed_at: null,
      terminated_at: null,
      exit: null,
      address: null,
      note: null,
      pruned_at: null
    }
  }

  /** We hold the claim: check capacity, write the config, start the node. */
  private async launch (req: LaunchRequest, dir: string, claim: Manifest): Promise<Instance> {
    this.launching.add(req.key)
    let child: ChildProcess
    let m = claim
    try {
      // Counted after claiming, so two launches racing for the last slot
      // (other processes included) cannot both pass: each sees the other.
      const others = this.scan().filter((e) => e.dir !== dir && (e.observed === null ? e.unreadable !== undefined && e.unreadable.ageMs < LAUNCH_STALE_MS : e.observed.state !== 'terminated')).length
      if (others >= this.init.maxInstances) {
        throw new InsufficientCapacityError(this.name, `${this.name}: max_instances ${this.init.maxInstances} reached (${others} running)`, req.offering)
      }
      const config = nodeConfig({
        provider: this.name,
        region: this.init.region,
        costPerHour: this.init.costPerHour,
        swarmKeyFile: resolve(this.init.swarmKeyFile),
        stateDir: claim.state_dir,
        socket: claim.socket,
        id: claim.id,
        launchedAt: claim.launched_at,
        req,
        defaults: this.init.defaults ?? {}
      })
      // Checked here rather than by a node that exits 2 a moment later: the
      // launcher gets the reason, and the key is given back (nothing ran).
      const valid = this.init.validateConfig(config, claim.config)
      if (this.init.stopGraceMs === undefined) m = { ...m, stop_grace_ms: valid.http.drain_timeout + STOP_GRACE_EXTRA_MS }
      writeManifest(dir, m)
      mkdirSync(claim.state_dir, { recursive: true, mode: 0o700 })
      writeFileSync(claim.config, JSON.stringify(config, null, 2) + '\n', { mode: 0o640 })
      try {
        child = await spawnDetached(this.init.meshdBin, claim.config, claim.log, dir, this.childEnv())
      } catch (e) {
        throw new ProviderUnavailableError(this.name, `${this.name}: could not start ${this.init.meshdBin}: ${(e as Error).message}`, { cause: e })
      }
    } catch (e) {
      this.launching.delete(req.key)
      this.giveBack(dir)
      throw e
    }
    const pid = child.pid!
    try {
      // Someone may have settled our claim meanwhile (we took longer than
      // LAUNCH_STALE_MS): a record closed as terminated stays closed.
      const now = readManifestFile(dir)
      if (now.kind === 'ok' && now.manifest.terminated_at !== null) {
        killNode(pid)
        return this.instance({ m: now.manifest, state: 'terminated' })
      }
      m = now.kind === 'ok' && now.manifest.pid !== null ? now.manifest : { ...m, pid }
      writeManifest(dir, m)
    } finally {
      this.launching.delete(req.key)
    }
    // Only a parent learns how its child ended; whoever else looks finds it gone.
    child.once('exit', (code, sig) => { this.recordExit(dir, pid, code, sig) })
    return this.instance({ m, state: 'pending' })
  }

  /** Gives a claim back: nothing was started for it, so the key may be used again. */
  private giveBack (dir: string): void {
    try { rmSync(dir, { recursive: true, force: true }) } catch {}
  }

  private childEnv (): Record<string, string> {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) {
      if (v === undefined) continue
      if (k.startsWith('MESHD_') && k !== 'MESHD_NODE') continue
      env[k] = v
    }
    return { ...env, ...this.init.env }
  }

  private recordExit (dir: string, pid: number, code: number | null, sig: NodeJS.Signals | null): void {
    try {
      const r = readManifestFile(dir)
      if (r.kind !== 'ok' || r.manifest.pid !== pid) return
      const m = r.manifest
      writeManifest(dir, { ...m, terminated_at: m.terminated_at ?? Math.floor(this.now()), exit: { code, signal: sig } })
    } catch {}
  }

  // -- observing ---------------------------------------------------------------

  /**
   * The manifest in `dir`, waiting while another process launches it (at
   * most SETTLE_WAIT_MS). Null when there is none (or it was given back).
   */
  private async settled (dir: string): Promise<Observed | null> {
    const deadline = performance.now() + SETTLE_WAIT_MS
    for (;;) {
      const r = readManifestFile(dir)
      if (r.kind === 'absent') return null
      if (r.kind === 'unreadable' && r.ageMs >= LAUNCH_STALE_MS) {
        throw new ProviderUnavailableError(this.name, `${this.name}: ${manifestPath(dir)} is damaged (${r.why}); move ${dir} away to use its key again`)
      }
      if (r.kind === 'ok') {
        const o = this.observe(dir, r.manifest)
        if (o.state !== 'launching') return o
      }
      if (performance.now() >= deadline) throw new ProviderUnavailableError(this.name, `${this.name}: ${dir} is still being launched by another process`)
      await sleep(20)
    }
  }

  private observeDir (dir: string): Observed | null {
    const r = readManifestFile(dir)
    return r.kind === 'ok' ? this.observe(dir, r.manifest) : null
  }

  /**
   * The instance's state now, from its manifest and its process; records
   * what changed (gone, running, adopted) and escalates a stop whose grace
   * is over.
   */
  private observe (dir: string, m0: Manifest): Observed {
    let m = m0
    if (m.terminated_at !== null) return { m, state: 'terminated' }
    const now = Math.floor(this.now())
    const save = (next: Manifest): Manifest => { writeManifest(dir, next); return next }
    if (m.pid === null) {
      const underWay = this.launching.has(m.key) || (pidExists(m.launcher_pid) && now - m.launched_at < LAUNCH_STALE_MS)
      if (underWay) return { m, state: 'launching' }
      // Its launcher died (or hung) before it recorded the pid: if the node
      // was started, it is found by its command line and adopted.
      const pid = findByConfig(m.config)
      if (pid === null) {
        return { m: save({ ...m, terminated_at: now, note: `the launch did not finish: launcher pid ${m.launcher_pid} ${pidExists(m.launcher_pid) ? 'hung' : 'exited'} before the node ran` }), state: 'terminated' }
      }
      m = save({ ...m, pid, note: `adopted: launcher pid ${m.launcher_pid} did not record the node's pid` })
    }
    const pid = m.pid!
    // Not "is it ours": a node caught mid-exec shows no arguments for a moment.
    if (!mayBeOurProcess(pid, m.config)) {
      return { m: save({ ...m, terminated_at: now }), state: 'terminated' }
    }
    if (m.stop_requested_at !== null) {
      if (now - m.stop_requested_at >= m.stop_grace_ms && (m.killed_at === null || now - m.killed_at >= KILL_REPEAT_MS)) {
        killNode(pid)
        m = save({ ...m, killed_at: now, note: `SIGKILLed: still running ${Math.round((now - m.stop_requested_at) / 1000)} s after SIGTERM (grace ${Math.round(m.stop_grace_ms / 1000)} s)` })
      }
      return { m, state: 'stopping' }
    }
    const up = existsSync(m.socket)
    if (m.running_at === null) {
      if (!up) return { m, state: 'pending' }
      m = save({ ...m, running_at: now, address: readAddress(m.log) })
      return { m, state: 'running' }
    }
    if (m.address === null && up) {
      const address = readAddress(m.log)
      if (address !== null) m = save({ ...m, address })
    }
    // Its socket closes when it begins to stop by itself (retiring: ttl, idle, lost mesh).
    return { m, state: up ? 'running' : 'stopping' }
  }

  /** Every instance directory of the work dir, observed. */
  private scan (): Entry[] {
    let names: string[]
    try {
      names = readdirSync(this.workDir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw e
    }
    const out: Entry[] = []
    for (const n of names) {
      if (n.startsWith('.')) continue
      const dir = join(this.workDir, n)
      const r = readManifestFile(dir)
      if (r.kind === 'absent') continue
      if (r.kind === 'unreadable') out.push({ dir, observed: null, unreadable: { why: r.why, ageMs: r.ageMs } })
      else out.push({ dir, observed: this.observe(dir, r.manifest) })
    }
    return out
  }

  /** Live instances of the whole work dir (every cluster: they share the machine). */
  private countLive (): number {
    return this.scan().filter((e) => e.observed !== null && e.observed.state !== 'terminated').length
  }

  /** Terminated instances lose their state dir, config and log after a day, their directory after 90 days. */
  private prune (entries: Entry[]): void {
    const now = this.now()
    if (now - this.lastPrune < PRUNE_EVERY_MS) return
    this.lastPrune = now
    const pruneAfter = this.init.pruneAfterMs ?? PRUNE_AFTER_MS
    const forgetAfter = this.init.forgetAfterMs ?? FORGET_AFTER_MS
    for (const e of entries) {
      const m = e.observed?.m
      if (m === undefined || m.terminated_at === null) continue
      try {
        if (now - m.terminated_at >= forgetAfter) {
          rmSync(e.dir, { recursive: true, force: true })
        } else if (m.pruned_at === null && now - m.terminated_at >= pruneAfter) {
          for (const n of readdirSync(e.dir)) if (n !== MANIFEST) rmSync(join(e.dir, n), { recursive: true, force: true })
          if (!m.socket.startsWith(e.dir)) rmSync(m.socket, { force: true })
          writeManifest(e.dir, { ...m, pruned_at: Math.floor(now) })
        }
      } catch {}
    }
  }

  // -- helpers -----------------------------------------------------------------

  private dirOf (id: string): string | null {
    if (!id.startsWith(ID_PREFIX)) return null
    const name = id.slice(ID_PREFIX.length)
    if (name === '' || name.startsWith('.') || name.includes('/') || name.includes('\0')) return null
    return join(this.workDir, name)
  }

  private instance (o: Observed): Instance {
    return instanceOf(this.name, o.m, o.state, this.init.costPerHour)
  }

  /** File system trouble (a full disk, permissions) is the provider being unavailable: the leader retries. */
  private async guard<T> (body: () => T | Promise<T>): Promise<T> {
    try {
      return await body()
    } catch (e) {
      if (isProviderError(e)) throw e
      const code = (e as NodeJS.ErrnoException).code
      if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw new ProviderUnavailableError(this.name, `${this.name}: ${(e as Error).message}`, { cause: e })
      throw e
    }
  }
}

/** Starts `meshd start --config <config>` in its own session with output to `log`; resolves once it is spawned. */
async function spawnDetached (meshdBin: string, config: string, log: string, cwd: string, env: Record<string, string>): Promise<ChildProcess> {
  const fd = openSync(log, 'a', 0o640)
  try {
    const child = spawn(meshdBin, ['start', '--config', config], { cwd, env, detached: true, stdio: ['ignore', fd, fd] })
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', reject)
    })
    child.unref()
    return child
  } finally {
    closeSync(fd)
  }
}

/** The node's mesh address from its "meshd started" log line, or null while it has not logged it. */
function readAddress (log: string): string | null {
  let text: string
  try {
    const fd = openSync(log, 'r')
    try {
      const buf = Buffer.alloc(64 * 1024)
      const n = readSync(fd, buf, 0, buf.length, 0)
      text = buf.subarray(0, n).toString('utf8')
    } finally {
      closeSync(fd)
    }
  } catch {
    return null
  }
  return addressFromLog(text)
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
