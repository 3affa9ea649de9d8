/**
 * `kind: ssh`: burst replicas on a pool of bare hosts reached over SSH
 * (SkyPilot's ssh_node_pools shape). One burst node per host. See README.md.
 *
 * Nothing lives only in memory: each launch is a directory on its host
 * (remote.ts) whose `key.json` carries the idempotency key, so a new leader
 * lists, adopts and terminates what an old one launched, and a key is never
 * launched twice (the record stays, marked terminated, after the node ends).
 *
 * Every step runs under a deadline (connection.ts). A host that fails a
 * step is left clean (the claim given back, a started process killed),
 * reported with the step, and cooled down; create() moves to the next host.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, readFileSync, statSync } from 'node:fs'
import { isIPv4 } from 'node:net'
import { z } from 'zod'
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
import { instanceOf, launchRecordShape } from '../instance-record.ts'
import { DEFAULT_DRAIN_MS, deepMerge, nodeConfig } from '../node-config.ts'
import { addressFromLog } from '../started-line.ts'
import { Connection, HostStepError, readIdentity, targetName, type Step, type Target } from './connection.ts'
import { parseKnownHosts, type KnownHostsEntry } from './known-hosts.ts'
import { parseProbe, probeScript, type HostFacts } from './probe.ts'
import { needsUpload, parseBundleManifest, type BundleManifest } from '../bundle-manifest.ts'
import { readBundleFileManifest } from './bundle-file.ts'
import { burstDir, claimScript, cleanupScript, installedScript, killScript, releaseScript, startScript, stateScript, stopScript, unpackScript, writeFileScript } from './remote.ts'
import { SingleFlight } from '../single-flight.ts'

export interface SshHostInit {
  ip: string
  port?: number
  user?: string
  identityFile?: string
  /** Where meshd is put on this host. @default the pool's install_dir */
  installDir?: string
  /** Merged into that host's node config, over everything else. */
  config?: Record<string, unknown>
}

/** Validates a node's config as `meshd start` would; throws with the reason. */
export type ValidateNodeConfig = (raw: unknown, file: string) => { http: { drain_timeout: number } }

export interface SshProviderInit {
  name: string
  cluster: string
  user: string
  identityFile?: string
  knownHostsFile: string
  installDir: string
  region: string
  costPerHour: number
  maxInstances: number
  hosts: SshHostInit[]
  /** The bundle (tar.gz with bin/meshd) to install on a host of this architecture (x64 | arm64). */
  bundleFor: (arch: 'x64' | 'arm64') => Promise<string>
  swarmKeyFile: string
  defaults?: Record<string, unknown>
  validateConfig: ValidateNodeConfig
  /** Per SSH handshake. @default 10 s */
  connectTimeoutMs?: number
  /** Per remote command. @default 30 s */
  commandTimeoutMs?: number
  /** Per bundle upload. @default 10 min */
  uploadTimeoutMs?: number
  /** list() / offerings(): each host's whole read, then it is reported as failing. @default 20 s (under the leader's 30 s) */
  scanTimeoutMs?: number
  /** A host that failed a step is not used for this long. @default 5 min */
  cooldownMs?: number
  /** SIGTERM → SIGKILL. @default the node's http.drain_timeout + 60 s */
  stopGraceMs?: number
  now?: () => number
}

export const KEY_RECORD_VERSION = 1
const keyRecordSchema = z.object({
  v: z.literal(KEY_RECORD_VERSION),
  ...launchRecordShape,
  host: z.string(),
  /** Set once the process was started (a record without it and no process is a launch under way, or one that died). */
  started_at: z.number().nullable()
})
export type KeyRecord = z.output<typeof keyRecordSchema>

export const STOP_GRACE_EXTRA_MS = 60_000
/** A claim whose process never started is a launch under way for this long (a slow bundle upload), then dead. */
export const LAUNCH_STALE_MS = 15 * 60_000
/**
 * How long the record of a terminated launch (`key.json`) stays on its host.
 * It is what makes a re-issued launch of that key resolve to the terminated
 * instance instead of a second node; a leader re-issues a launch only until
 * its launch timeout (15 min after the decision), so 7 days is far beyond
 * any re-issue — a ledger restored from an old copy included — while the
 * records (a few hundred bytes each) do not pile up on a busy host.
 */
export const TOMBSTONE_KEEP_MS = 7 * 24 * 3600_000
const SETTLE_WAIT_MS = 60_000
const KILL_REPEAT_MS = 5_000
/** Unix socket paths are limited to 108 bytes. */
const MAX_SOCKET_PATH = 100

/** The directory of a key on the host: the key when it is a safe name, else a readable part and a hash. */
export function dirName (key: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(key)) return key
  const readable = key.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '').slice(0, 40)
  return `${readable}-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`
}

interface Host { name: string, target: Target, installDir: string, config: Record<string, unknown> }

interface Seen {
  dir: string
  rec: KeyRecord | null
  alive: boolean
  proc: boolean
  sock: boolean
  started: string | null
}

type Observed = { host: Host, dir: string, rec: KeyRecord, state: InstanceState | 'launching' }

/** One row of `meshd pool check`. */
export interface HostCheck {
  host: string
  reachable: boolean
  hostKey: 'known' | 'unknown' | 'CHANGED' | 'revoked' | '?'
  fingerprint: string | null
  facts: HostFacts | null
  nodes: Array<{ id: string, key: string, state: InstanceState | 'launching', cluster: string }>
  error: { step: Step, message: string } | null
  ms: number
}

export function sshProvider (init: SshProviderInit): SshProvider {
  return new SshProvider(init)
}

export class SshProvider implements Provider {
  readonly name: string
  readonly kind = 'ssh' as const
  readonly hosts: Host[]
  private readonly init: SshProviderInit
  private readonly now: () => number
  private readonly creating = new SingleFlight<Instance>()
  /** Hosts a create() of this object is working on (not offered to another create meanwhile). */
  private readonly reserved = new Set<string>()
  private readonly launching = new Set<string>()
  private readonly cooling = new Map<string, { until: number, error: HostStepError }>()
  private readonly bundleCache = new Map<string, { stamp: string, sha256: string, manifest: BundleManifest }>()
  /**
   * Launches of this object that failed and could not be cleaned up (the
   * connection was cut): removed the next time their host answers. Another
   * process sees such a claim as a launch under way until LAUNCH_STALE_MS.
   */
  private readonly abandoned = new Set<string>()

  constructor (init: SshProviderInit) {
    this.init = init
    this.name = init.name
    this.now = init.now ?? Date.now
    this.hosts = init.hosts.map((h) => {
      const identityFile = h.identityFile ?? init.identityFile
      const port = h.port ?? 22
      const name = targetName({ host: h.ip, port })
      return { name, target: { host: h.ip, port, user: h.user ?? init.user, identityFile: identityFile ?? null }, installDir: h.installDir ?? init.installDir, config: h.config ?? {} }
    })
  }

  /** Problems with the config that no host can fix: missing identity files, an unreadable known_hosts. Empty when fine. */
  configProblems (): string[] {
    const out: string[] = []
    for (const f of new Set(this.hosts.map((h) => h.target.identityFile))) {
      if (f === null) {
        if ((process.env.SSH_AUTH_SOCK ?? '') === '') out.push('no identity_file configured and no SSH agent (SSH_AUTH_SOCK is not set)')
        continue
      }
      try { readIdentity(this.name, f) } catch (e) { out.push(e instanceof HostStepError ? e.reason : (e as Error).message) }
    }
    try { readFileSync(this.init.knownHostsFile) } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') out.push(`known_hosts ${this.init.knownHostsFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
    }
    return out
  }

  /** Hosts cooling down after a failure, with why (for status and pool check). */
  coolingDown (): Array<{ host: string, until: number, step: Step, message: string }> {
    const now = this.now()
    return [...this.cooling.entries()].filter(([, c]) => c.until > now).map(([host, c]) => ({ host, until: c.until, step: c.error.step, message: c.error.reason }))
  }

  private offering (free: number): Offering {
    return { provider: this.name, kind: 'ssh', region: this.init.region, spot: false, pricePerHour: this.init.costPerHour, available: free > 0, capacity: free }
  }

  async offerings (): Promise<Offering[]> {
    const seen = await this.scanAll()
    return [this.offering(this.freeHosts(seen).length)]
  }

  create (req: LaunchRequest): Promise<Instance> {
    return this.creating.run(req.key, async () => await this.doCreate(req))
  }

  async delete (id: string): Promise<void> {
    const where = this.parseId(id)
    if (where === null) throw new NotFoundError(this.name, id)
    const o = await this.guard(where.host, async (c) => await this.observeOne(c, where.host, where.dir))
    if (o === null || o.rec.id !== id || o.rec.cluster !== this.init.cluster || o.state === 'terminated') throw new NotFoundError(this.name, id)
    if (o.rec.stop_requested_at !== null) return
    await this.guard(where.host, async (c) => {
      // Recorded before the signal: a later delete must not send a second SIGTERM.
      await this.writeRecord(c, where.host, where.dir, { ...o.rec, stop_requested_at: Math.floor(this.now()) })
      await c.run('stop', stopScript(where.host.installDir, where.dir, Math.ceil(o.rec.stop_grace_ms / 1000), false), { timeoutMs: this.cmdMs() })
    })
  }

  async get (id: string): Promise<Instance> {
    const where = this.parseId(id)
    if (where === null) throw new NotFoundError(this.name, id)
    const o = await this.guard(where.host, async (c) => await this.observeOne(c, where.host, where.dir))
    if (o === null || o.rec.id !== id || o.rec.cluster !== this.init.cluster || o.state === 'terminated') throw new NotFoundError(this.name, id)
    return this.instance(o)
  }

  /**
   * Every host's launches, or a rejection when any host cannot be read: a
   * list without that host would make its node, which may well be running
   * (the leader merely cut off from it), look gone to the leader's reconcile
   * ("vanished"), and a replacement would be a second node once it answers.
   * Unavailable, the leader reconciles nothing of this pool that round.
   */
  async list (): Promise<Instance[]> {
    const seen = await this.scanAll()
    const unread = seen.filter((s) => s.error !== null)
    if (unread.length > 0) {
      throw new ProviderUnavailableError(this.name, `${this.name}: cannot list the pool: ${unread.map((s) => s.error!.message).join('; ')} ` +
        `(a node there may still run; until ${unread.length === 1 ? 'it answers' : 'they answer'} or ${unread.length === 1 ? 'is' : 'are'} removed from the config, nothing of this pool is reported gone)`)
    }
    const out: Instance[] = []
    for (const s of seen) for (const o of s.observed) if (o.rec.cluster === this.init.cluster && o.state !== 'terminated') out.push(this.instance(o))
    return out.sort((a, b) => a.launchedAt - b.launchedAt || a.id.localeCompare(b.id))
  }

  /** Every host's facts, host key and burst nodes, in parallel, each within its deadlines: `meshd pool check`. */
  async check (): Promise<HostCheck[]> {
    return await Promise.all(this.hosts.map(async (h) => await this.checkHost(h)))
  }

  // -- create ----------------------------------------------------------------

  private async doCreate (req: LaunchRequest): Promise<Instance> {
    const mine = this.offering(1)
    if (offeringId(req.offering) !== offeringId(mine) || req.offering.kind !== 'ssh') {
      throw new InsufficientCapacityError(this.name, `${this.name}: offering ${offeringId(req.offering)} is not offered (only ${offeringId(mine)})`, req.offering)
    }
    const dir = dirName(req.key)
    const seen = await this.scanAll()
    // The key on any host, whatever its state: that is the instance (never a second one).
    for (const s of seen) {
      const o = s.observed.find((x) => x.dir === dir && x.rec.key === req.key)
      if (o !== undefined) return this.instance(o.state === 'launching' ? await this.settle(o.host, dir) : o)
    }
    const live = seen.reduce((n, s) => n + s.observed.filter((o) => o.state !== 'terminated').length, 0)
    if (live >= this.init.maxInstances) throw new InsufficientCapacityError(this.name, `${this.name}: max_instances ${this.init.maxInstances} reached (${live} running)`, req.offering)
    const failures: string[] = []
    for (const host of this.freeHosts(seen)) {
      if (this.reserved.has(host.name)) continue
      this.reserved.add(host.name)
      try {
        return await this.launchOn(host, req, dir)
      } catch (e) {
        if (isProviderError(e)) throw e
        const err = e instanceof HostStepError ? e : new HostStepError(host.name, 'start', (e as Error).message, { cause: e })
        this.cooling.set(host.name, { until: this.now() + (this.init.cooldownMs ?? 5 * 60_000), error: err })
        failures.push(err.message)
      } finally {
        this.reserved.delete(host.name)
      }
    }
    const why = [...failures, ...seen.filter((s) => s.error !== null).map((s) => s.error!.message), ...this.coolingDown().filter((c) => !failures.some((f) => f.startsWith(c.host + ':'))).map((c) => `${c.host}: cooling down after ${c.step}: ${c.message}`)]
    throw new InsufficientCapacityError(this.name, `${this.name}: no pool host could take ${req.key}${why.length > 0 ? ` (${[...new Set(why)].join('; ')})` : ' (every host is busy)'}`, req.offering)
  }

  /** Claims the key on `host`, installs, configures, starts. Leaves the host clean when any step fails. */
  private async launchOn (host: Host, req: LaunchRequest, dir: string): Promise<Instance> {
    const c = await this.connect(host)
    let claimed = false
    let started = false
    this.launching.add(req.key)
    try {
      const claim = (await c.run('state', claimScript(host.installDir, dir), { timeoutMs: this.cmdMs() })).trim()
      if (claim !== 'claimed') return this.instance(await this.settle(host, dir))
      claimed = true
      const id = `${host.name}/${dir}`
      let rec: KeyRecord = {
        v: KEY_RECORD_VERSION,
        key: req.key,
        id,
        cluster: req.cluster,
        provider: this.name,
        region: this.init.region,
        node_name: req.node.name,
        host: host.name,
        launched_at: Math.floor(this.now()),
        price_per_hour: this.init.costPerHour,
        stop_grace_ms: this.init.stopGraceMs ?? DEFAULT_DRAIN_MS + STOP_GRACE_EXTRA_MS,
        started_at: null,
        stop_requested_at: null,
        killed_at: null,
        terminated_at: null,
        address: null,
        note: null
      }
      await this.writeRecord(c, host, dir, rec)
      // Counted after claiming: another leader racing for this host sees our claim, we see its.
      const others = (await this.readHost(c, host)).filter((o) => o.dir !== dir && o.state !== 'terminated')
      if (others.length > 0) throw new HostStepError(host.name, 'capacity', `busy: already runs ${others.map((o) => o.rec.key).join(', ')}`)
      const facts = parseProbe(await c.run('probe', probeScript(host.installDir), { timeoutMs: this.cmdMs() }))
      if (facts.bundleArch === null) throw new HostStepError(host.name, 'probe', `architecture ${facts.arch} has no meshd bundle (x86_64 and aarch64 do)`)
      await this.install(c, host, facts.bundleArch)
      const d = burstDir(host.installDir, dir)
      const socket = `${d}/admin.sock`
      const ip = host.target.host
      const config = nodeConfig({
        provider: this.name,
        region: this.init.region,
        costPerHour: this.init.costPerHour,
        swarmKeyFile: `${d}/swarm.key`,
        stateDir: `${d}/state`,
        socket: socket.length <= MAX_SOCKET_PATH ? socket : `/tmp/meshd-${createHash('sha256').update(d).digest('hex').slice(0, 16)}.sock`,
        id,
        launchedAt: rec.launched_at,
        req: { ...req, node: { ...req.node, config: deepMerge(req.node.config, host.config) } },
        defaults: this.init.defaults ?? {},
        // The address the pool reaches it by is the one the mesh reaches it by.
        listen: isIPv4(ip) ? { mesh: [`/ip4/${ip}/tcp/0`], http: `${ip}:0` } : { mesh: ['/ip4/0.0.0.0/tcp/0'], http: '0.0.0.0:0' }
      })
      const valid = this.init.validateConfig(config, `${host.name}:${d}/meshd.json`)
      if (this.init.stopGraceMs === undefined) rec = { ...rec, stop_grace_ms: valid.http.drain_timeout + STOP_GRACE_EXTRA_MS }
      await c.run('configure', writeFileScript(`${d}/swarm.key`), { timeoutMs: this.cmdMs(), stdin: readFileSync(this.init.swarmKeyFile) })
      await c.run('configure', writeFileScript(`${d}/meshd.json`), { timeoutMs: this.cmdMs(), stdin: JSON.stringify(config, null, 2) + '\n' })
      const useSystemd = facts.systemd && facts.sudo.ok
      started = true
      await c.run('start', startScript({ installDir: host.installDir, dir, systemd: useSystemd, unit: unitName(dir), stopGraceSec: Math.ceil(rec.stop_grace_ms / 1000), sudo: facts.sudo.ok && facts.sudo.how === 'sudo' }), { timeoutMs: this.cmdMs() })
      rec = { ...rec, started_at: Math.floor(this.now()) }
      await this.writeRecord(c, host, dir, rec)
      // Resolves once the process runs: a node that exits at once (a bad bundle) is this host's failure.
      const deadline = performance.now() + 3_000
      for (;;) {
        const o = (await this.readHost(c, host)).find((x) => x.dir === dir)
        if (o === undefined || o.state === 'terminated') {
          const tail = (await c.exec('start', `tail -n 5 ${burstDir(host.installDir, dir)}/meshd.log`, { timeoutMs: this.cmdMs() })).stdout.trim()
          throw new HostStepError(host.name, 'start', `meshd exited at once: ${tail.split('\n').slice(-3).join(' / ') || 'no output'}`)
        }
        if (performance.now() >= deadline || o.state === 'running') return this.instance(o)
        await sleep(200)
      }
    } catch (e) {
      if (claimed) {
        // Leave the host clean: a started node is killed, the claim given back (the key may be tried elsewhere).
        try {
          if (started) await c.run('stop', killScript(host.installDir, dir, false), { timeoutMs: this.cmdMs() })
          await c.run('state', releaseScript(host.installDir, dir), { timeoutMs: this.cmdMs() })
        } catch {
          // The host went away mid-launch: clean up the next time it answers.
          this.abandoned.add(`${host.name}/${dir}`)
        }
      }
      throw e
    } finally {
      this.launching.delete(req.key)
      c.close()
    }
  }

  /**
   * Uploads and unpacks the bundle unless the host already has the same
   * contents (the manifests' digests: a bundle rebuilt from the same sources
   * is not uploaded again, even when its archive bytes differ). The upload
   * itself is checked by the archive's sha256 on the host.
   */
  private async install (c: Connection, host: Host, arch: 'x64' | 'arm64'): Promise<void> {
    let file: string
    try {
      file = await this.init.bundleFor(arch)
    } catch (e) {
      throw new HostStepError(host.name, 'install', `no bundle for ${arch}: ${(e as Error).message}`, { cause: e })
    }
    const local = await this.bundleInfo(host, file)
    if (local.manifest.arch !== arch) throw new HostStepError(host.name, 'install', `bundle ${file} is for ${local.manifest.arch}, the host is ${arch}`)
    const said = (await c.run('install', installedScript(host.installDir), { timeoutMs: this.cmdMs() })).trim()
    let installed: BundleManifest | null = null
    if (said !== '') {
      // A damaged or older manifest on the host is no match: the bundle is installed again.
      try { installed = parseBundleManifest(said, `${host.name}:${host.installDir}/current/meshd-bundle.json`) } catch {}
    }
    if (!needsUpload(installed, local.manifest)) return
    const tag = randomBytes(6).toString('hex')
    const upload = `${host.installDir.replace(/\/+$/, '')}/.upload-${tag}.tar.gz`
    try {
      await c.upload(file, upload, 0o600, this.init.uploadTimeoutMs ?? 600_000)
    } catch (e) {
      // SFTP says only "Failure" for a full disk: say how much room there is.
      let free = ''
      try {
        const r = await c.exec('upload', `rm -f '${upload}'; df -Pk '${host.installDir}' | awk 'NR==2{print $4}'`, { timeoutMs: this.cmdMs() })
        const kb = Number(r.stdout.trim())
        if (r.stdout.trim() !== '' && Number.isFinite(kb)) free = ` (${kb} KB free in ${host.installDir}; the bundle is ${Math.ceil(statSync(file).size / 1024)} KB)`
      } catch {}
      if (e instanceof HostStepError && free !== '') throw new HostStepError(host.name, 'upload', `${e.reason}${free}`, { cause: e })
      throw e
    }
    await c.run('install', unpackScript(host.installDir, upload, local.sha256, local.manifest.contents_sha256, tag), { timeoutMs: this.init.uploadTimeoutMs ?? 600_000 })
  }

  /** The bundle's sha256 and manifest, read once per file version (size and mtime). */
  private async bundleInfo (host: Host, file: string): Promise<{ sha256: string, manifest: BundleManifest }> {
    let st
    try { st = statSync(file) } catch (e) { throw new HostStepError(host.name, 'install', `bundle ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`) }
    const stamp = `${st.size}:${st.mtimeMs}`
    const hit = this.bundleCache.get(file)
    if (hit !== undefined && hit.stamp === stamp) return hit
    let manifest: BundleManifest
    try { manifest = await readBundleFileManifest(file) } catch (e) { throw new HostStepError(host.name, 'install', (e as Error).message, { cause: e }) }
    const h = createHash('sha256')
    for await (const chunk of createReadStream(file)) h.update(chunk as Buffer)
    const info = { stamp, sha256: h.digest('hex'), manifest }
    this.bundleCache.set(file, info)
    return info
  }

  /** Waits while another process launches `dir` on `host`; returns the settled instance. */
  private async settle (host: Host, dir: string): Promise<Observed> {
    const deadline = performance.now() + SETTLE_WAIT_MS
    for (;;) {
      const o = await this.guard(host, async (c) => await this.observeOne(c, host, dir))
      if (o !== null && o.state !== 'launching') return o
      if (performance.now() >= deadline) throw new ProviderUnavailableError(this.name, `${this.name}: ${host.name} is still launching ${dir} (another leader?)`)
      await sleep(200)
    }
  }

  // -- observing -----------------------------------------------------------------

  private freeHosts (seen: Array<{ host: Host, observed: Observed[], error: HostStepError | null }>): Host[] {
    const now = this.now()
    return seen.filter((s) => s.error === null && !s.observed.some((o) => o.state !== 'terminated') && !((this.cooling.get(s.host.name)?.until ?? 0) > now)).map((s) => s.host)
  }

  /** Every host, in parallel, each within its deadlines; a host that fails is reported, not fatal. */
  private async scanAll (): Promise<Array<{ host: Host, observed: Observed[], error: HostStepError | null }>> {
    const limit = this.init.scanTimeoutMs ?? 20_000
    return await Promise.all(this.hosts.map(async (host) => {
      let conn: Connection | null = null
      let timer: NodeJS.Timeout | undefined
      try {
        // One deadline for the whole host, under the leader's own for list()
        // (30 s): a host that hangs is reported, the others still answer.
        const expired = new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { conn?.close(); reject(new HostStepError(host.name, 'state', `no answer within ${limit} ms`)) }, limit)
        })
        return await Promise.race([expired, (async () => {
          conn = await this.connect(host)
          return { host, observed: await this.readHost(conn, host), error: null }
        })()])
      } catch (e) {
        return { host, observed: [], error: e instanceof HostStepError ? e : new HostStepError(host.name, 'state', (e as Error).message) }
      } finally {
        clearTimeout(timer)
        ;(conn as Connection | null)?.close()
      }
    }))
  }

  private async observeOne (c: Connection, host: Host, dir: string): Promise<Observed | null> {
    return (await this.readHost(c, host)).find((o) => o.dir === dir) ?? null
  }

  /** The host's launch records, observed: transitions recorded (gone → terminated and cleaned; grace over → SIGKILL). */
  private async readHost (c: Connection, host: Host): Promise<Observed[]> {
    const out: Observed[] = []
    for (const s of parseState(await c.run('state', stateScript(host.installDir), { timeoutMs: this.cmdMs() }))) {
      if (s.rec === null) continue
      if (s.rec.terminated_at !== null && this.now() - s.rec.terminated_at >= TOMBSTONE_KEEP_MS) {
        await c.run('state', releaseScript(host.installDir, s.dir), { timeoutMs: this.cmdMs() })
        continue
      }
      if (this.abandoned.has(`${host.name}/${s.dir}`) && s.rec.started_at === null) {
        if (s.alive) await c.run('stop', killScript(host.installDir, s.dir, false), { timeoutMs: this.cmdMs() })
        await c.run('state', releaseScript(host.installDir, s.dir), { timeoutMs: this.cmdMs() })
        this.abandoned.delete(`${host.name}/${s.dir}`)
        continue
      }
      out.push(await this.observe(c, host, s))
    }
    return out
  }

  private async observe (c: Connection, host: Host, s: Seen): Promise<Observed> {
    let rec = s.rec!
    const now = Math.floor(this.now())
    const o = (state: Observed['state']): Observed => ({ host, dir: s.dir, rec, state })
    if (rec.terminated_at !== null) return o('terminated')
    if (!s.alive) {
      if (!s.proc && rec.started_at === null && (this.launching.has(rec.key) || now - rec.launched_at < LAUNCH_STALE_MS)) return o('launching')
      rec = { ...rec, terminated_at: now, note: s.proc || rec.started_at !== null ? rec.note : 'the launch did not finish' }
      await c.run('state', cleanupScript(host.installDir, s.dir), { timeoutMs: this.cmdMs() })
      await this.writeRecord(c, host, s.dir, rec)
      return o('terminated')
    }
    if (rec.stop_requested_at !== null) {
      if (now - rec.stop_requested_at >= rec.stop_grace_ms && (rec.killed_at === null || now - rec.killed_at >= KILL_REPEAT_MS)) {
        await c.run('stop', killScript(host.installDir, s.dir, false), { timeoutMs: this.cmdMs() })
        rec = { ...rec, killed_at: now, note: `SIGKILLed: still running ${Math.round((now - rec.stop_requested_at) / 1000)} s after SIGTERM` }
        await this.writeRecord(c, host, s.dir, rec)
      }
      return o('stopping')
    }
    if (rec.address === null && s.started !== null) {
      const address = addressFromLog(s.started)
      if (address !== null) { rec = { ...rec, address }; await this.writeRecord(c, host, s.dir, rec) }
    }
    if (s.sock) return o('running')
    // Was running (address known) and its socket went: it retires by itself.
    return o(rec.address !== null && s.started !== null ? 'stopping' : 'pending')
  }

  private async writeRecord (c: Connection, host: Host, dir: string, rec: KeyRecord): Promise<void> {
    await c.run('state', writeFileScript(`${burstDir(host.installDir, dir)}/key.json`), { timeoutMs: this.cmdMs(), stdin: JSON.stringify(rec) + '\n' })
  }

  private async checkHost (h: Host): Promise<HostCheck> {
    const t0 = performance.now()
    const row: HostCheck = { host: h.name, reachable: false, hostKey: '?', fingerprint: null, facts: null, nodes: [], error: null, ms: 0 }
    try {
      const c = await this.connect(h)
      row.reachable = true
      row.hostKey = 'known'
      try {
        row.facts = parseProbe(await c.run('probe', probeScript(h.installDir), { timeoutMs: this.cmdMs() }))
        row.nodes = (await this.readHost(c, h)).filter((o) => o.state !== 'terminated').map((o) => ({ id: o.rec.id, key: o.rec.key, state: o.state, cluster: o.rec.cluster }))
      } finally { c.close() }
    } catch (e) {
      const err = e instanceof HostStepError ? e : new HostStepError(h.name, 'connect', (e as Error).message)
      row.error = { step: err.step, message: err.message }
      if (err.hostKey !== undefined) {
        row.reachable = true
        row.fingerprint = err.hostKey.fingerprint
        row.hostKey = err.hostKey.verdict.kind === 'changed' ? 'CHANGED' : err.hostKey.verdict.kind === 'known' ? 'known' : err.hostKey.verdict.kind
      } else if (err.step === 'auth') {
        row.reachable = true
        row.hostKey = 'known'
      }
    }
    row.ms = Math.round(performance.now() - t0)
    return row
  }

  // -- helpers -------------------------------------------------------------------

  private cmdMs (): number { return this.init.commandTimeoutMs ?? 30_000 }

  private knownHosts (): KnownHostsEntry[] {
    try {
      return parseKnownHosts(readFileSync(this.init.knownHostsFile, 'utf8')).entries
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw new HostStepError(this.name, 'config', `known_hosts ${this.init.knownHostsFile}: ${(e as Error).message}`)
    }
  }

  private async connect (host: Host): Promise<Connection> {
    return await Connection.open(host.target, { knownHosts: this.knownHosts(), knownHostsFile: this.init.knownHostsFile, pool: this.name, timeoutMs: this.init.connectTimeoutMs ?? 10_000 })
  }

  /** Runs `body` on a connection to `host`; a host that cannot be reached is the provider being unavailable (retry later). */
  private async guard<T> (host: Host, body: (c: Connection) => Promise<T>): Promise<T> {
    let c: Connection
    try {
      c = await this.connect(host)
    } catch (e) {
      throw new ProviderUnavailableError(this.name, `${this.name}: ${(e as Error).message}`, { cause: e })
    }
    try {
      return await body(c)
    } catch (e) {
      if (isProviderError(e)) throw e
      throw new ProviderUnavailableError(this.name, `${this.name}: ${(e as Error).message}`, { cause: e })
    } finally {
      c.close()
    }
  }

  private parseId (id: string): { host: Host, dir: string } | null {
    const i = id.lastIndexOf('/')
    if (i <= 0) return null
    const host = this.hosts.find((h) => h.name === id.slice(0, i))
    const dir = id.slice(i + 1)
    if (host === undefined || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(dir)) return null
    return { host, dir }
  }

  private instance (o: Observed): Instance {
    return instanceOf(this.name, o.rec, o.state, this.init.costPerHour)
  }
}

/** systemd unit names allow [A-Za-z0-9:_.\-]. */
export function unitName (dir: string): string {
  return `meshd-burst-${dir.replace(/[^A-Za-z0-9:_.-]/g, '-')}`
}

/** The state script's output (remote.ts) as records; a record that does not parse is skipped (rec null). */
export function parseState (stdout: string): Seen[] {
  const out: Seen[] = []
  let cur: Seen | null = null
  for (const line of stdout.split('\n')) {
    if (line.startsWith('@@ ')) {
      cur = { dir: line.slice(3).trim(), rec: null, alive: false, proc: false, sock: false, started: null }
      out.push(cur)
      continue
    }
    if (cur === null) continue
    const i = line.indexOf('=')
    if (i <= 0) continue
    const k = line.slice(0, i)
    const v = line.slice(i + 1)
    if (k === 'key') {
      try {
        const p = keyRecordSchema.safeParse(JSON.parse(v))
        if (p.success) cur.rec = p.data
      } catch {}
    } else if (k === 'alive') cur.alive = v === 'yes'
    else if (k === 'proc') cur.proc = v === 'yes'
    else if (k === 'sock') cur.sock = v === 'yes'
    else if (k === 'started') cur.started = v
  }
  return out
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
