/**
 * Coordination on a node: the election (voters), the replicated ledger, the
 * leader's duties (burst service), the control protocol between members,
 * and, on a burst node, its own retirement. Answers the admin socket's
 * burst, terminate and voters requests from any node by forwarding them to
 * the leader over the mesh.
 */
import { randomUUID } from 'node:crypto'
import type { Config } from '../config/schema.ts'
import type { Db } from '../store/db.ts'
import type { Log } from '../log.ts'
import type { MeshNode } from '../../mesh/node.ts'
import type { Membership } from '../../mesh/membership/service.ts'
import { Election, type ElectionEvents, type ElectionHeartbeat, type RemovalResult, type ResetResult } from '../../mesh/election/service.ts'
import { leaveStep, type LeaveView } from '../../mesh/election/leave.ts'
import { ElectionStore, type WriteFailed } from '../../mesh/election/storage.ts'
import { LedgerReplica } from './ledger-replica.ts'
import { BurstService, type BurstMetrics, type LeaderGate, type RecordView } from './service.ts'
import { Ctl, CtlError, type CtlRequest } from '../../mesh/ctl/rpc.ts'
import { buildProviders } from './providers.ts'
import { retireReason } from '../burst-node/retire.ts'
import { policyFromConfig, type Answer } from './index.ts'
import type { Provider } from '../../providers/types.ts'
import type { Startable } from '../../mesh/startable.ts'

/** What Coordination needs of the election (daemon/election's Election is one). */
export interface ElectionPort extends LeaderGate {
  start: () => Promise<void>
  stop: () => Promise<void>
  status: () => { term: number, group: string | null, role: string, voters: string[], acting: boolean, reason: { text: string } | null }
  reportedLeader: () => string | null
  heartbeat: () => ElectionHeartbeat
  removeVoter: (id: string, timeoutMs?: number) => Promise<RemovalResult>
  leaveView: () => LeaveView
  forceReset: () => ResetResult
  on: ((event: 'apply', listener: (...args: ElectionEvents['apply']) => void) => unknown) &
  ((event: 'reset', listener: (...args: ElectionEvents['reset']) => void) => unknown) &
  ((event: 'leader:change', listener: (...args: ElectionEvents['leader:change']) => void) => unknown)
}

export interface CoordinationLog {
  info: (o: object, msg: string) => void
  warn: (o: object, msg: string) => void
  error: (o: object, msg: string) => void
  debug: (o: object, msg: string) => void
  child: (bindings: Record<string, unknown>) => CoordinationLog
}

/** What Coordination is built from: interfaces of what it uses, so a test can hand it stubs. */
export interface CoordinationComponents {
  membership: Pick<Membership, 'members'>
  /** The control protocol between members. */
  ctl: Pick<Ctl, 'start' | 'stop' | 'handle' | 'call'>
  /** This node's election; null on a non-voter (it neither leads nor holds the ledger's log). */
  election: ElectionPort | null
  providers: ReadonlyMap<string, Provider>
  log: CoordinationLog
  /** Drains this node (stop taking requests) without stopping it: the leader's drain. */
  drain: (reason: string) => void
  /** Stops this node for good (a burst node retiring itself). */
  retire: (reason: string) => void
  /** Requests in flight here, and when the last one started or ended. */
  activity: () => { busy: number, lastAt: number }
  metrics?: BurstMetrics
}

/** What the daemon hands over; `Coordination.create` builds the concrete parts from it. */
export interface CoordinationDeps {
  node: MeshNode
  membership: Membership
  db: Db
  log: Log
  drain: CoordinationComponents['drain']
  retire: CoordinationComponents['retire']
  activity: CoordinationComponents['activity']
  /** Whether this node was told of peers (bootstrap, join, remembered). */
  knowsPeers: () => boolean
  /** Counters for the leader's decisions and launches (daemon/leader/metrics.ts). */
  metrics?: BurstMetrics
  /** An essential write of the election failed (a full state disk): the daemon stops (daemon/store/writes.ts). */
  storeFailed?: WriteFailed
}

export interface ElectionStatus {
  leader: string | null
  term: number
  group?: string | null
  role?: string
  voters?: string[]
  reason?: string
}

const CALL_TIMEOUT_MS = 70_000
const LEADER_WAIT_MS = 5000
/** Between tries of a leaving voter's removal (no leader yet, a change in progress). */
const LEAVE_RETRY_MS = 250

/** How a voter's departure from the voter set went (`meshd leave`). */
export interface VoterLeave {
  outcome: 'removed' | 'not_a_voter' | 'not_in_group' | 'only_voter'
  reason: string
  index?: number
}

/** The voter could not get its removal committed in time: it must not leave. */
export class LeaveRefused extends Error {
  override name = 'LeaveRefused'
}

const LEAVE_DONE: Record<VoterLeave['outcome'], string> = {
  removed: 'removed from the voter set',
  not_a_voter: 'not in the voter set',
  not_in_group: 'in no group yet: no voter counts on it',
  only_voter: 'the only voter: no other voter counts on it (members left behind have no leader until a voter joins)'
}

export class Coordination implements Startable {
  readonly ctl: CoordinationComponents['ctl']
  readonly election: ElectionPort | null
  readonly ledger: LedgerReplica
  readonly burst: BurstService | null
  private readonly config: Config
  private readonly selfId: string
  private readonly c: CoordinationComponents
  private retireTimer: NodeJS.Timeout | undefined
  private lastVoterSeenAt = Date.now()
  private readonly startedAt = Date.now()

  /** The daemon's coordination: the mesh's control protocol, the Raft election on a voter, the configured providers. */
  static create (config: Config, selfId: string, deps: CoordinationDeps): Coordination {
    const election = config.voter
      ? new Election({
        cluster: config.cluster,
        selfId,
        voter: true,
        timing: {
          heartbeatMs: config.election.heartbeat_ms,
          electionTimeoutMinMs: config.election.election_timeout_min_ms,
          electionTimeoutMaxMs: config.election.election_timeout_max_ms,
          maxDriftRate: config.election.max_drift_rate
        },
        voterExpiryMs: config.election.voter_expiry,
        knowsPeers: deps.knowsPeers
      }, { node: deps.node, membership: deps.membership, store: new ElectionStore(deps.db, deps.storeFailed), log: deps.log.child({ svc: 'election' }) })
      : null
    return new Coordination(config, selfId, {
      membership: deps.membership,
      ctl: new Ctl(deps.node, config.cluster),
      election,
      providers: config.voter ? buildProviders(config, { log: deps.log }) : new Map(),
      log: deps.log,
      drain: deps.drain,
      retire: deps.retire,
      activity: deps.activity,
      ...(deps.metrics !== undefined ? { metrics: deps.metrics } : {})
    })
  }

  constructor (config: Config, selfId: string, components: CoordinationComponents) {
    this.config = config
    this.selfId = selfId
    this.c = components
    this.ctl = components.ctl
    this.ledger = new LedgerReplica(components.log.child({ svc: 'ledger' }))
    this.election = components.election
    if (this.election !== null) {
      const election = this.election
      election.on('apply', (data, index) => { this.ledger.apply(data, index) })
      election.on('reset', () => { this.ledger.reset() })
      const burst = new BurstService({ selfId, policy: policyFromConfig(config) }, {
        election,
        ledger: this.ledger,
        membership: components.membership,
        providers: components.providers,
        ctl: this.ctl,
        log: components.log.child({ svc: 'leader' }),
        ...(components.metrics !== undefined ? { metrics: components.metrics } : {})
      })
      // Only the leader runs the cycle: becoming leader starts it, losing it stops it.
      election.on('leader:change', (leader) => {
        if (leader === selfId) burst.lead()
        else burst.follow()
      })
      this.burst = burst
    } else {
      this.burst = null
    }
    this.registerCtl()
  }

  async start (): Promise<void> {
    await this.ctl.start()
    await this.election?.start()
    if (this.config.instance !== undefined) {
      this.retireTimer = setInterval(() => { this.checkRetire() }, 2000)
      this.retireTimer.unref()
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.retireTimer)
    this.burst?.stop()
    await this.election?.stop()
    await this.ctl.stop()
  }

  heartbeat (): ElectionHeartbeat | undefined {
    return this.election?.heartbeat()
  }

  /** Leader and term as this node knows them; a non-voter reads them from the voters' heartbeats. */
  status (): ElectionStatus {
    if (this.election !== null) {
      const s = this.election.status()
      const out: ElectionStatus = { leader: this.election.reportedLeader(), term: s.term, group: s.group, role: s.role, voters: s.voters }
      if (s.reason !== null && !s.acting) out.reason = s.group === null ? 'no group yet: waiting to be added by a leader or to bootstrap' : s.reason.text
      return out
    }
    let best: ElectionStatus = { leader: null, term: 0, reason: 'not a voter: no voter with a leader in sight' }
    for (const m of this.c.membership.members()) {
      const e = m.heartbeat.election
      if (m.state !== 'alive' || e === undefined || e.leader === null) continue
      if (e.term > best.term) best = { leader: e.leader, term: e.term, group: e.group }
    }
    return best
  }

  /**
   * `meshd burst`: on the leader, decided here; elsewhere, forwarded to it.
   * `id` is the request's idempotency key (the CLI's): the ledger answers an
   * id it has decided with that decision, so a retry with the same id after
   * an unknown outcome cannot burst twice.
   */
  async requestBurst (params: { id?: string, count: number, provider?: string, spot?: boolean }): Promise<Answer> {
    const req: CtlRequest = { type: 'burst', id: params.id ?? `r-${randomUUID()}`, count: params.count, ...(params.provider !== undefined ? { provider: params.provider } : {}), ...(params.spot !== undefined ? { spot: params.spot } : {}) }
    return this.toLeader(req) as Promise<Answer>
  }

  async requestTerminate (params: { id?: string, count?: number, all?: boolean, provider?: string }): Promise<Answer> {
    const { id, ...rest } = params
    const req: CtlRequest = { type: 'terminate', id: id ?? `r-${randomUUID()}`, ...rest }
    return this.toLeader(req) as Promise<Answer>
  }

  async watch (keys: string[]): Promise<RecordView[]> {
    return this.toLeader({ type: 'watch', keys }) as Promise<RecordView[]>
  }

  async removeVoter (id: string): Promise<RemovalResult> {
    return this.toLeader({ type: 'remove_voter', id }) as Promise<RemovalResult>
  }

  /** `meshd voters reset --force` on this node (election/service.ts forceReset). */
  forceReset (): ResetResult {
    if (this.election === null) return { ok: false, reason: 'this node is not a voter (voter: false): only a voter can take over the voter set' }
    return this.election.forceReset()
  }

  /**
   * `meshd leave` on a voter, before anything else: gets this node's
   * removal from the voter set committed (mesh/election/leave.ts says how),
   * retrying until `timeoutMs`. Throws LeaveRefused, with the last reason,
   * if it could not: the caller must then stay (leaving would strand the
   * voters that count this node in their quorum).
   */
  async leaveVoterSet (timeoutMs: number): Promise<VoterLeave> {
    const election = this.election
    if (election === null) return { outcome: 'not_a_voter', reason: 'not a voter (voter: false)' }
    const deadline = Date.now() + timeoutMs
    let why = 'no leader known'
    for (;;) {
      const left = deadline - Date.now()
      if (left <= 0) break
      const step = leaveStep(election.leaveView())
      if ('done' in step) return { outcome: step.done, reason: LEAVE_DONE[step.done] }
      let r: RemovalResult | null = null
      try {
        if (step.act === 'remove_self') r = await election.removeVoter(this.selfId, left)
        else if (step.act === 'ask_leader') r = await this.ctl.call(step.leader, { type: 'remove_voter', id: this.selfId }, left) as RemovalResult
        else why = step.why
      } catch (err) {
        why = `the leader did not confirm: ${(err as Error).message}`
      }
      if (r !== null) {
        if (r.ok) return { outcome: 'removed', reason: r.reason, index: r.index }
        why = r.reason
      }
      this.c.log.debug({ step, why }, 'leave: removal from the voter set not done yet')
      await new Promise((resolve) => setTimeout(resolve, Math.min(LEAVE_RETRY_MS, Math.max(0, deadline - Date.now()))))
    }
    throw new LeaveRefused(`this node's removal from the voter set was not committed within ${Math.round(timeoutMs / 1000)} s (last: ${why})`)
  }

  /**
   * A request only the leader answers: handled here if we lead, else sent to
   * the leader we know. A node that just (re)started or an election in
   * progress gets LEADER_WAIT_MS for a leader to appear before "no leader".
   */
  private async toLeader (req: CtlRequest): Promise<unknown> {
    const deadline = Date.now() + LEADER_WAIT_MS
    for (;;) {
      if (this.election?.isActingLeader() === true) return this.handleAsLeader(req)
      const s = this.status()
      const leader = s.leader ?? this.announcedLeader()
      if (leader !== null && leader !== this.selfId) return this.ctl.call(leader, req, CALL_TIMEOUT_MS)
      if (Date.now() >= deadline) throw new CtlError('no_leader', `no leader: ${s.reason ?? 'election in progress'}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** The leader the alive voters announce in their heartbeats (highest term), if any. */
  private announcedLeader (): string | null {
    let best: { leader: string, term: number } | null = null
    for (const m of this.c.membership.members()) {
      const e = m.heartbeat.election
      if (m.id === this.selfId || m.state !== 'alive' || e === undefined || e.leader === null || e.leader !== m.id) continue
      if (best === null || e.term > best.term) best = { leader: e.leader, term: e.term }
    }
    return best?.leader ?? null
  }

  private async handleAsLeader (req: CtlRequest, from: string = this.selfId): Promise<unknown> {
    const burst = this.burst
    if (burst === null || this.election?.isActingLeader() !== true) throw new CtlError('not_leader', 'this node is not the acting leader')
    // The request id in the leader's log: what an operator looks up when the asker heard no answer.
    if (req.type === 'burst' || req.type === 'terminate') this.c.log.info({ request: req.id, from, count: req.count }, `${req.type} request ${req.id} received from ${from}`)
    switch (req.type) {
      case 'burst': return burst.request({ kind: 'burst', body: { id: req.id, count: req.count, ...(req.provider !== undefined ? { provider: req.provider } : {}), ...(req.spot !== undefined ? { spot: req.spot } : {}) } })
      case 'terminate': return burst.request({ kind: 'terminate', body: { id: req.id, ...(req.count !== undefined ? { count: req.count } : {}), ...(req.all !== undefined ? { all: req.all } : {}), ...(req.provider !== undefined ? { provider: req.provider } : {}) } })
      case 'watch': return burst.watch(req.keys)
      case 'remove_voter': return await this.election.removeVoter(req.id)
      case 'drain': throw new CtlError('bad_request', 'drain is sent to a member, not to the leader')
    }
  }

  private registerCtl (): void {
    for (const type of ['burst', 'terminate', 'watch', 'remove_voter'] as const) {
      this.ctl.handle(type, async (req, from) => this.handleAsLeader(req, from))
    }
    this.ctl.handle('drain', async (req, from) => {
      // Only the leader we know may drain us.
      const leader = this.status().leader
      if (leader !== null && from !== leader) throw new CtlError('forbidden', `drain requested by ${from}, who is not the leader (${leader})`)
      if (req.type === 'drain') this.c.drain(req.reason)
      return { draining: true }
    })
  }

  private checkRetire (): void {
    const inst = this.config.instance
    if (inst === undefined) return
    const now = Date.now()
    if (this.c.membership.members().some((m) => m.id !== this.selfId && m.state === 'alive' && m.heartbeat.voter)) this.lastVoterSeenAt = now
    const a = this.c.activity()
    const why = retireReason({
      now,
      launchedAt: inst.launched_at,
      lastActivityAt: Math.max(a.lastAt, this.startedAt),
      lastVoterSeenAt: this.lastVoterSeenAt,
      ttlMs: this.config.burst.ttl,
      idleTimeoutMs: this.config.burst.idle_timeout,
      lostMeshGraceMs: this.config.burst.lost_mesh_grace,
      busy: a.busy
    })
    if (why !== null) {
      clearInterval(this.retireTimer)
      this.c.log.info({ reason: why }, `burst node retiring: ${why}`)
      this.c.retire(why)
    }
  }
}
