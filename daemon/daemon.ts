/**
 * The daemon: builds its services from the config and starts them in order
 * (store → identity → mesh → membership → discovery → HTTP → admin socket);
 * stops them in reverse. The admin socket comes last so that a CLI that can
 * reach the daemon finds everything up.
 */
import { join } from 'node:path'
import type { Config } from './config/schema.ts'
import { DB_FILE, type Db } from './store/db.ts'
import { PeerStore, nonEssentialPeers, JOIN_ADDRS_WRITE } from './store/peers.ts'
import { StateWrites } from './store/writes.ts'
import { openState } from './startup/state.ts'
import { NodeState } from './store/node-state.ts'
import { createMetrics, registerMemberLoad, type Metrics } from './metrics.ts'
import { createLeaderMetrics, type LeaderMetricsView } from './leader/metrics.ts'
import type { BurstMetrics } from './leader/service.ts'
import { createLogger, type Log } from './log.ts'
import { LoadSampler } from './load-sampler.ts'
import { refusalReporter } from './peer-refusals.ts'
import { MESHD_VERSION } from './version.ts'
import { statusMembers, type StatusDocument } from './status.ts'
import { HttpServer, type Health } from './http/server.ts'
import { Serving } from './proxy/serving.ts'
import { OpenAIApi } from './http/api.ts'
import { BodyParser } from './http/body-parser.ts'
import { DescriptorWatch } from './http/descriptors.ts'
import { AccessLog } from './http/access-log.ts'
import { Coordination, LeaveRefused } from './leader/coordination.ts'
import { own } from './leader/ledger/ledger.ts'
import { AdminServer, AdminRequestError } from './admin/server.ts'
import { readSwarmKey } from '../mesh/swarm-key.ts'
import { createMeshNode, type MeshNode } from '../mesh/node.ts'
import { Membership, type SelfDescription } from '../mesh/membership/service.ts'
import { Discovery } from '../mesh/discovery/service.ts'
import { failureTiming } from '../mesh/membership/constants.ts'
import { nameClashes, describeClash } from '../mesh/membership/names.ts'
import { requestIdPattern } from './leader/ledger/entries.ts'
import { binding } from './startup/listen-errors.ts'
import { NoticePoller } from './burst-node/notice-poller.ts'
import { drainBudgetMs, INTERRUPTION_MARGIN_MS, type Notice } from './burst-node/notices.ts'

export interface DaemonOptions {
  log?: Log
  /** Called once the daemon has stopped because of `meshd leave` (the CLI process exits then). */
  onExit?: (code: number) => void
  /** `meshd start --reset-state`: accept a lost or damaged state (startup/state.ts). */
  resetState?: boolean
  /**
   * Ends the process at once, after an essential write failed (store/writes.ts).
   * @default process.exit
   */
  exit?: (code: number) => void
}

type Lifecycle = 'created' | 'starting' | 'running' | 'draining' | 'stopping' | 'stopped'

export class Daemon {
  readonly config: Config
  readonly log: Log
  readonly metrics: Metrics
  private readonly opts: DaemonOptions
  private db!: Db
  /** How writes to the state database fail: non-essential ones logged, essential ones fatal. */
  private writes!: StateWrites
  node!: MeshNode
  membership!: Membership
  discovery!: Discovery
  http!: HttpServer
  serving!: Serving
  /** The OpenAI-compatible front door (HTTP side; where requests go is serving.router's). */
  api!: OpenAIApi
  coordination!: Coordination
  private admin!: AdminServer
  /** On an EC2 burst node (instance.notices: ec2): reads spot notices from the instance metadata. */
  private notices: NoticePoller | undefined
  /** When EC2 takes this instance (an interruption notice), or null. */
  private interruptionAt: number | null = null
  private interruptionTimer: NodeJS.Timeout | undefined
  /** Checks request bodies; large ones in a worker thread, off the loop that runs the mesh's timers. */
  private readonly bodies = new BodyParser()
  private descriptors: DescriptorWatch | undefined
  private readonly load: LoadSampler
  private readonly burstMetrics: BurstMetrics
  private lifecycle: Lifecycle = 'created'
  private stopping: Promise<void> | undefined
  /**
   * `meshd leave` is getting this voter out of the voter set: its heartbeat
   * says voter: false meanwhile, so no leader adds it back before it goes.
   */
  private leavingVoterSet = false

  constructor (config: Config, opts: DaemonOptions = {}) {
    this.config = config
    this.opts = opts
    this.log = opts.log ?? createLogger(config.log.level, { node: config.node_name })
    this.metrics = createMetrics({ requestTimeoutMs: config.http.request_timeout })
    registerMemberLoad(this.metrics.registry, () => this.membership?.members() ?? [])
    this.burstMetrics = createLeaderMetrics(this.metrics.registry, config.voter ? config.providers.map((p) => p.name) : null, () => this.leaderMetricsView())
    this.load = new LoadSampler(Math.max(1000, config.mesh.heartbeat_ms))
  }

  get peerId (): string {
    return this.node.peerId.toString()
  }

  get state (): Lifecycle {
    return this.lifecycle
  }

  async start (): Promise<void> {
    if (this.lifecycle !== 'created') throw new Error(`cannot start a daemon that is ${this.lifecycle}`)
    this.lifecycle = 'starting'
    const c = this.config
    this.writes = new StateWrites({ path: statePath(c, DB_FILE) }, {
      log: this.log.child({ svc: 'store' }),
      exit: this.opts.exit ?? ((code) => { process.exit(code) })
    })
    const save = (what: string, write: () => void): void => { this.writes.nonEssential(what, write) }
    const state = await openState(c.state_dir, { resetState: this.opts.resetState === true, save })
    if (state.reset !== null) this.log.warn({ moved_aside: state.movedAside }, state.reset)
    this.db = state.db
    const identity = state.identity
    const peerStore = new PeerStore(this.db)
    const peers = nonEssentialPeers(peerStore, save)
    const incarnation = new NodeState(this.db).nextIncarnation(Date.now(), (w) => { save('the incarnation', w) })
    const swarmKey = readSwarmKey(c.swarm_key_file)

    this.node = await binding('mesh.listen', c.mesh.listen, async () => createMeshNode({
      privateKey: identity.privateKey,
      swarmKey,
      swarmKeyFile: c.swarm_key_file,
      onRefused: refusalReporter({ metrics: this.metrics, log: this.log.child({ svc: 'pnet' }), keyFile: c.swarm_key_file }),
      listen: c.mesh.listen,
      announce: c.mesh.announce,
      maxGossipRpcBytes: Math.max(1 << 20, c.mesh.max_message_bytes * 4)
    }))
    const timing = failureTiming(c.mesh.heartbeat_ms, {
      suspectAfterMs: c.mesh.suspect_after_ms,
      deadAfterMs: c.mesh.dead_after_ms,
      forgetAfterMs: c.mesh.forget_after
    })
    this.membership = new Membership({
      cluster: c.cluster,
      incarnation,
      timing,
      maxMessageBytes: c.mesh.max_message_bytes,
      describeSelf: () => this.describeSelf()
    }, {
      node: this.node,
      metrics: this.metrics,
      log: this.log.child({ svc: 'membership' }),
      probe: async (peer) => this.discovery.probe(peer, Math.min(1000, c.mesh.heartbeat_ms))
    })
    this.discovery = new Discovery({
      cluster: c.cluster,
      bootstrap: c.mesh.bootstrap,
      heartbeatMs: c.mesh.heartbeat_ms
    }, { node: this.node, membership: this.membership, peers, metrics: this.metrics, log: this.log.child({ svc: 'discovery' }) })
    this.serving = new Serving(c, identity.peerId.toString(), {
      node: this.node,
      membership: this.membership,
      metrics: this.metrics,
      log: this.log,
      front: { active: () => this.api.active, lastActivityAt: () => this.api.lastActivityAt }
    })
    this.api = new OpenAIApi({
      selfId: identity.peerId.toString(),
      apiKeys: c.http.api_keys,
      maxBodyBytes: c.http.max_body_bytes,
      bodyTimeoutMs: c.http.body_timeout,
      queueTimeoutMs: c.http.queue_timeout,
      requestTimeoutMs: c.http.request_timeout,
      maxTokens: c.http.max_tokens,
      maxTokensByModel: c.http.max_tokens_by_model
    }, {
      router: this.serving.router,
      parser: this.bodies,
      metrics: this.metrics,
      draining: () => this.serving.isDraining,
      log: this.log.child({ svc: 'api' })
    })
    this.coordination = Coordination.create(c, identity.peerId.toString(), {
      node: this.node,
      membership: this.membership,
      db: this.db,
      log: this.log,
      drain: (reason) => {
        if (this.serving.isDraining) return
        this.log.info({ reason }, 'the leader asked this node to drain')
        this.serving.startDraining()
        void this.membership.publishNow()
      },
      retire: (reason) => {
        this.stop('retire').then(() => { this.opts.onExit?.(0) }, (err: unknown) => {
          this.log.error({ err, reason }, 'retiring failed')
          this.opts.onExit?.(1)
        })
      },
      activity: () => this.serving.activity(),
      knowsPeers: () => c.mesh.bootstrap.length > 0 || peers.joinAddrs().length > 0 || peers.list().length > 0,
      metrics: this.burstMetrics,
      storeFailed: (what, err) => { this.writes.essentialFailed(what, err) }
    })
    this.descriptors = new DescriptorWatch({}, { log: this.log.child({ svc: 'http' }) })
    this.http = new HttpServer({ listen: c.http.listen, selfId: identity.peerId.toString(), maxConnections: c.http.max_connections }, {
      registry: this.metrics.registry,
      descriptors: this.descriptors,
      requests: this.metrics.requests,
      health: () => this.health(),
      api: (req, res, access) => { this.api.handle(req, res, access) },
      access: new AccessLog({ selfId: identity.peerId.toString(), selfName: c.node_name }, {
        log: this.log.child({ svc: 'access' }),
        memberName: (peer) => this.membership.member(peer)?.heartbeat.name
      }),
      log: this.log.child({ svc: 'http' })
    })
    this.admin = new AdminServer({ socketPath: c.admin.socket, idleTimeoutMs: c.admin.idle_timeout, log: this.log.child({ svc: 'admin' }) })
    this.registerAdmin()
    if (c.instance?.notices === 'ec2') {
      this.notices = new NoticePoller({ intervalMs: c.instance.notice_poll }, {
        log: this.log.child({ svc: 'notices' }),
        count: (kind) => { this.metrics.spotNotices.inc({ kind }) },
        onNotice: (n) => { this.onNotice(n) }
      })
    }

    this.load.start()
    await this.node.start()
    // Discovery registers the cluster's sync protocol before membership
    // publishes, so identify tells peers we are of this cluster from the start.
    await this.discovery.start()
    await this.serving.start()
    await this.coordination.start()
    this.membership.start()
    await this.descriptors.start()
    const fdLimit = this.descriptors.limit
    if (fdLimit !== null && c.http.max_connections >= fdLimit) {
      this.log.warn({ max_connections: c.http.max_connections, limit: fdLimit }, `http.max_connections (${c.http.max_connections}) is not below this process's descriptor limit (${fdLimit}): connections will fail for want of descriptors before the cap refuses them; raise LimitNOFILE or lower http.max_connections`)
    }
    await binding('http.listen', [c.http.listen], async () => { await this.http.start() })
    await binding('admin.socket', [c.admin.socket], async () => { await this.admin.start() })
    this.notices?.start()
    this.lifecycle = 'running'
    this.log.info({
      peer: this.peerId,
      cluster: c.cluster,
      incarnation,
      addrs: this.node.getMultiaddrs().map((a) => a.toString()),
      http: `${c.http.listen.replace(/:\d+$/, '')}:${this.http.port}`,
      admin: c.admin.socket,
      version: MESHD_VERSION
    }, 'meshd started')
  }

  /**
   * Stops the daemon. With `leave`, first tells the mesh this member left
   * (so it is listed `left`, not `dead`).
   */
  stop (reason: 'signal' | 'leave' | 'retire' | 'error' = 'signal'): Promise<void> {
    this.stopping ??= this.doStop(reason)
    return this.stopping
  }

  private async doStop (reason: string): Promise<void> {
    if (this.lifecycle === 'created') { this.lifecycle = 'stopped'; return }
    this.log.info({ reason }, 'meshd stopping')
    if (this.lifecycle === 'running' && reason !== 'error') {
      // Draining: say so in a heartbeat at once (members stop sending us
      // requests), refuse new ones, let those in flight finish.
      this.lifecycle = 'draining'
      await this.membership.publishNow().catch(() => {})
      await this.serving.drain(drainBudgetMs(Date.now(), this.config.http.drain_timeout, this.interruptionAt))
    }
    this.lifecycle = 'stopping'
    clearTimeout(this.interruptionTimer)
    await this.notices?.stop()
    await this.admin?.stop().catch(() => {})
    await this.http?.stop().catch(() => {})
    await this.descriptors?.stop()
    await this.bodies.stop()
    await this.serving?.stop().catch((err: unknown) => { this.log.warn({ err }, 'stopping the replica failed') })
    // Only `meshd leave` says "left": a SIGTERM (systemctl stop/restart) is a
    // pause, not a departure, and must not shrink the voter set. Others see
    // its connections close and list it suspect, then dead.
    if (reason === 'leave' || reason === 'retire') await this.membership?.announceLeave().catch(() => {})
    else await this.membership?.publishNow().catch(() => {})
    await this.coordination?.stop().catch(() => {})
    this.discovery?.stop()
    this.membership?.stop()
    await Promise.resolve(this.node?.stop()).catch(() => {})
    this.load.stop()
    this.db?.close()
    this.lifecycle = 'stopped'
    this.log.info({ reason }, 'meshd stopped')
  }

  /**
   * A notice from EC2 (notice-poller.ts): the next heartbeat carries it, at
   * once. An interruption drains this node now (no new requests; those in
   * flight go on) and stops it INTERRUPTION_MARGIN_MS before the termination
   * time, cutting what is still running: EC2 would cut it anyway, and this
   * way the node says it left.
   */
  private onNotice (n: Notice): void {
    if (n.kind === 'interruption') {
      this.interruptionAt = n.at
      if (!this.serving.isDraining) this.serving.startDraining()
      clearTimeout(this.interruptionTimer)
      const cutIn = drainBudgetMs(Date.now(), 0, n.at)
      this.interruptionTimer = setTimeout(() => {
        this.log.warn({ at: new Date(n.at).toISOString(), requests: this.serving.busy() }, `stopping ${INTERRUPTION_MARGIN_MS} ms before the spot interruption`)
        this.stop('retire').then(() => { this.opts.onExit?.(0) }, (err: unknown) => {
          this.log.error({ err }, 'stopping before the interruption failed')
          this.opts.onExit?.(1)
        })
      }, cutIn)
      this.interruptionTimer.unref()
    }
    void this.membership.publishNow().catch(() => {})
  }

  /** The status document; released members (left, or terminated by the ledger) only with `all`. */
  status (opts: { all?: boolean } = {}): StatusDocument {
    const now = Date.now()
    const e = this.coordination.status()
    const doc: StatusDocument = {
      self: this.peerId,
      name: this.config.node_name,
      cluster: this.config.cluster,
      leader: e.leader,
      term: e.term,
      ...statusMembers(this.membership.members(), now, (inst) => this.instanceState(inst), opts.all === true),
      election: { ...e }
    }
    if (this.coordination.burst !== null && e.leader !== null) doc.budget = this.coordination.burst.budget()
    return doc
  }

  /** What the election and budget gauges read at scrape time; undefined until the daemon has started. */
  private leaderMetricsView (): LeaderMetricsView | undefined {
    if (this.lifecycle !== 'running' && this.lifecycle !== 'draining') return undefined
    const burst = this.coordination.burst
    const ledger = this.coordination.ledger
    return {
      selfId: this.peerId,
      election: () => this.coordination.status(),
      members: () => this.membership.members(),
      burst: burst === null ? null : { budget: () => burst.budget(), ledger: () => ledger.state, providers: this.config.providers.map((p) => p.name) }
    }
  }

  /**
   * The ledger's state of a burst instance, as this node's replica of the
   * ledger holds it (voters hold it; on a non-voter it is empty and only
   * `left` releases a member). Matched by key, as the leader matches them.
   */
  private instanceState (inst: { provider: string, id: string, key?: string }): string | undefined {
    const instances = this.coordination.ledger.state.instances
    if (inst.key !== undefined) return own(instances, inst.key)?.state
    return Object.values(instances).find((r) => r.provider === inst.provider && r.id === inst.id)?.state
  }

  private describeSelf (): SelfDescription {
    const c = this.config
    const election = this.coordination?.heartbeat()
    const self: SelfDescription = {
      name: c.node_name,
      version: MESHD_VERSION,
      state: this.lifecycle === 'draining' || this.lifecycle === 'stopping' || this.serving?.isDraining === true ? 'draining' : 'alive',
      voter: c.voter && !this.leavingVoterSet,
      provider: c.provider,
      region: c.region,
      spot: c.spot,
      cost_per_hour: c.cost_per_hour,
      // The bound address (http.listen may ask for port 0).
      http: this.http !== undefined && this.http.port !== 0 ? `${c.http.listen.replace(/:\d+$/, '')}:${this.http.port}` : c.http.listen,
      load: this.load.get(),
      replica: this.serving?.heartbeat() ?? null,
      ...(election !== undefined ? { election } : {}),
      instance: c.instance === undefined ? null : { provider: c.instance.provider, id: c.instance.id, ...(c.instance.key !== undefined ? { key: c.instance.key } : {}), launched_at: c.instance.launched_at }
    }
    if (c.zone !== undefined) self.zone = c.zone
    const notice = this.notices?.notice ?? null
    if (notice !== null) self.notice = notice
    return self
  }

  private health (): Health {
    if (this.lifecycle !== 'running') return { ok: false, reason: `daemon is ${this.lifecycle}` }
    const r = this.serving.canRoute()
    // A full state disk does not stop routing (only non-essential writes
    // failed, or the node would have stopped): 200 still, with the disk's
    // condition in the detail for whoever watches.
    const disk = this.writes.condition()
    return {
      ok: r.ok,
      reason: r.reason,
      detail: { models_ready: r.models, members: this.membership.table.size, disk: disk.disk, ...(disk.error !== undefined ? { disk_error: disk.error } : {}) }
    }
  }

  private async waitForInstances (keys: string[], emit: (e: Record<string, unknown>) => void, signal: AbortSignal): Promise<unknown[]> {
    const seen = new Map<string, string>()
    const deadline = Date.now() + WAIT_LIMIT_MS
    let last: Array<{ key: string, state: string }> = []
    while (!signal.aborted && Date.now() < deadline) {
      try {
        last = await this.coordination.watch(keys)
        for (const r of last) {
          if (seen.get(r.key) !== r.state) {
            seen.set(r.key, r.state)
            emit({ ...r })
          }
        }
        if (last.length === keys.length && last.every((r) => FINAL_STATES.has(r.state))) return last
      } catch (err) {
        emit({ warning: `could not ask the leader: ${(err as Error).message}` })
      }
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    return last
  }

  private registerAdmin (): void {
    this.admin.handle('ping', async () => ({ pong: true }))
    this.admin.handle('status', async (params) => this.status({ all: params.all === true }))
    this.admin.handle('version', async () => ({ meshd: MESHD_VERSION, node: process.versions.node }))
    this.admin.handle('info', async () => ({
      peer: this.peerId,
      name: this.config.node_name,
      addrs: this.node.getMultiaddrs().map((a) => a.toString()),
      http: `${this.config.http.listen.replace(/:\d+$/, '')}:${this.http.port}`,
      pid: process.pid,
      version: MESHD_VERSION
    }))
    this.admin.handle('join', async (params) => {
      if (params.list === true) return { addrs: this.discovery.joinList() }
      if (params.forget !== undefined) {
        const addr = params.forget
        if (typeof addr !== 'string' || addr.length === 0) throw new AdminRequestError('usage', 'join --forget needs the address to forget')
        const outcome = this.discovery.forgetJoin(addr)
        if (outcome === 'bootstrap') throw new AdminRequestError('failed', `${addr} is in mesh.bootstrap of the config, not a join address: remove it there and restart`)
        if (outcome === 'unknown') throw new AdminRequestError('failed', `${addr} is not a remembered join address (see \`meshd join --list\`)`)
        return { forgotten: addr }
      }
      const addrs = params.addrs
      if (!Array.isArray(addrs) || addrs.length === 0 || !addrs.every((a) => typeof a === 'string')) {
        throw new AdminRequestError('usage', 'join needs one or more multiaddrs')
      }
      const since = Date.now()
      const results = await this.discovery.join(addrs as string[])
      if (results.every((r) => !r.ok)) {
        // A refused handshake means the peer was reached: say that, not "could not reach".
        const head = results.some((r) => r.refused !== undefined) ? `could not join through any of ${addrs.length} peer(s)` : `could not reach any of ${addrs.length} peer(s)`
        throw new AdminRequestError('failed', `${head}: ${results.map((r) => r.refused !== undefined ? r.error : `${r.addr}: ${r.error ?? ''}`).join('; ')}`)
      }
      // Hear the mesh behind the peers first, so that a name clash shows now.
      await this.discovery.settled(results.flatMap((r) => r.peer !== undefined ? [r.peer] : []), since, JOIN_SETTLE_MS)
      const warnings = nameClashes(this.membership.members()).map(describeClash)
      const disk = this.writes.condition()
      if (disk.disk !== 'ok' && disk.error?.startsWith(JOIN_ADDRS_WRITE) === true && (disk.at ?? 0) >= since) {
        warnings.push(`joined, but these addresses are not remembered across restarts: ${disk.error}`)
      }
      return { results, warnings }
    })
    this.admin.handle('burst', async (params, emit, signal) => {
      const count = params.count
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw new AdminRequestError('usage', 'burst needs --count N (a positive integer)')
      const answer = await this.coordination.requestBurst({
        ...requestId(params),
        count,
        ...(typeof params.provider === 'string' ? { provider: params.provider } : {}),
        ...(typeof params.spot === 'boolean' ? { spot: params.spot } : {})
      }).catch(leaderFailure)
      if (params.wait !== true || answer.instances.length === 0) return { answer }
      return { answer, instances: await this.waitForInstances(answer.instances, emit, signal) }
    })
    this.admin.handle('terminate', async (params) => {
      const answer = await this.coordination.requestTerminate({
        ...requestId(params),
        ...(typeof params.count === 'number' ? { count: params.count } : {}),
        ...(params.all === true ? { all: true } : {}),
        ...(typeof params.provider === 'string' ? { provider: params.provider } : {})
      }).catch(leaderFailure)
      return { answer }
    })
    this.admin.handle('voters', async (params) => {
      if (params.reset === true) {
        if (params.force !== true) throw new AdminRequestError('usage', RESET_NEEDS_FORCE)
        const r = this.coordination.forceReset()
        if (!r.ok) throw new AdminRequestError('failed', `voters reset refused: ${r.reason}`)
        return r
      }
      if (typeof params.remove === 'string') {
        const r = await this.coordination.removeVoter(params.remove).catch((err: Error) => { throw new AdminRequestError('failed', err.message) })
        if (!r.ok) throw new AdminRequestError('failed', r.reason)
        return r
      }
      return this.voterList()
    })
    this.admin.handle('leave', async (params) => {
      if (this.lifecycle !== 'running' || this.leavingVoterSet) throw new AdminRequestError('failed', `this daemon is ${this.leavingVoterSet ? 'already leaving' : this.lifecycle}`)
      const timeoutMs = typeof params.timeout_ms === 'number' && params.timeout_ms > 0 ? params.timeout_ms : LEAVE_TIMEOUT_MS
      // A voter first gets its removal committed: leaving without it would
      // strand the voters that still count it (two voters: the survivor
      // could elect no one). If that fails, it stays, as it was.
      this.leavingVoterSet = true
      await this.membership.publishNow().catch(() => {})
      let voter
      try {
        voter = await this.coordination.leaveVoterSet(timeoutMs)
      } catch (err) {
        this.leavingVoterSet = false
        await this.membership.publishNow().catch(() => {})
        if (!(err instanceof LeaveRefused)) throw err
        this.log.warn({ reason: err.message }, 'leave refused: this node stays in the voter set and keeps running')
        throw new AdminRequestError('failed', `not leaving: ${err.message}. Nothing changed: this daemon keeps running as a voter. Check \`meshd voters\` (are the other voters alive?) and try again; to stop it anyway without leaving, stop the service (systemctl stop meshd).`)
      }
      this.log.info({ outcome: voter.outcome, index: voter.index }, `leave: ${voter.reason}`)
      // Answer first, then go: the CLI hears that the departure is under way.
      setImmediate(() => {
        this.stop('leave').then(() => { this.opts.onExit?.(0) }, (err: unknown) => {
          this.log.error({ err }, 'leave failed')
          this.opts.onExit?.(1)
        })
      })
      return { leaving: true, peer: this.peerId, voter }
    })
  }

  /** `meshd voters`: the voter set with each voter's name and state as this node sees them. */
  private voterList (): Record<string, unknown> {
    const e = this.coordination.status()
    const byId = new Map(this.membership.members().map((m) => [m.id, m]))
    const ids = e.voters ?? []
    const members = ids.map((id) => {
      const m = byId.get(id)
      return {
        id,
        name: id === this.peerId ? this.config.node_name : m?.heartbeat.name ?? null,
        state: id === this.peerId ? 'self' : m?.state ?? 'unknown',
        leader: id === e.leader
      }
    })
    const leaderName = e.leader === null ? null : e.leader === this.peerId ? this.config.node_name : byId.get(e.leader)?.heartbeat.name ?? null
    return { voters: ids, members, leader: e.leader, leader_name: leaderName, term: e.term, group: e.group ?? null, reason: e.reason ?? null }
  }
}

/** How long `meshd leave` tries to get a voter's removal committed before it gives up and stays. */
const LEAVE_TIMEOUT_MS = 20_000

const RESET_NEEDS_FORCE = 'voters reset makes this node the only voter of a new group, dropping every other voter without its consent. ' +
  'It is for a survivor whose group lost its majority for good (machines that will not come back); ' +
  'entries the old group had not committed may become committed. Voters that come back later rejoin as fresh voters. ' +
  'Run it on one survivor only, then `meshd join` the others to it. Add --force to do it.'

/** How long `meshd join` waits to hear the members behind the peers it joined through (for its name check). */
const JOIN_SETTLE_MS = 3000

/** The CLI's idempotency key for a burst or terminate request, checked as the ledger will. */
function requestId (params: Record<string, unknown>): { id?: string } {
  const id = params.request_id
  if (id === undefined) return {}
  if (typeof id !== 'string' || !requestIdPattern.test(id)) throw new AdminRequestError('usage', 'a request id is letters, digits and ._:/@- (at most 128, starting with a letter or digit)')
  return { id }
}

/**
 * A burst or terminate the leader may have carried out though no answer came
 * (it died mid-request, its decision may have committed, it took too long):
 * 'outcome_unknown', which the CLI reports as such (exit 3), never as not done.
 */
const OUTCOME_UNKNOWN = new Set(['no_answer', 'timeout', 'not_committed'])
function leaderFailure (err: Error): never {
  const code = (err as { code?: unknown }).code
  throw new AdminRequestError(typeof code === 'string' && OUTCOME_UNKNOWN.has(code) ? 'outcome_unknown' : 'failed', err.message)
}

/** Until every instance is ready or has failed (or the client goes away), emits each state change. */
const WAIT_LIMIT_MS = 20 * 60_000
const FINAL_STATES = new Set(['ready', 'failed', 'terminated', 'vanished', 'unknown'])

export function statePath (config: Config, file: string): string {
  return join(config.state_dir, file)
}
