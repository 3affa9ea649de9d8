/**
 * The election on a daemon: the pure Raft core (mesh/election/raft) driven by a
 * monotonic clock, persisted in SQLite, talking over the mesh, with the
 * group rules of group.ts (who bootstraps, which group yields) and the
 * leader's housekeeping of the voter set (add voters that appear, remove
 * those that left or stayed dead past `voter_expiry`).
 *
 * Committed commands are handed to `onApply` in log order on every voter,
 * which is how every voter holds the ledger and a new leader resumes where
 * the old one stopped.
 */
import { EventEmitter } from 'node:events'
import { Raft, forcedRecovery, type Entry, type RaftStatus, type Timing } from './raft/index.ts'
import type { Membership } from '../membership/service.ts'
import type { MeshNode } from '../node.ts'
import { ElectionStore } from './storage.ts'
import { RaftTransport, type Envelope } from './transport.ts'
import { admit, ourSize, bootstrapVerdict, strandedVerdict, voterToAdd, yieldVerdict, BOOTSTRAP_MAX_WAIT_MS, BOOTSTRAP_SETTLE_MS, type GroupView } from './group.ts'
import { supersededBy, withoutSuperseded, MAX_SUPERSEDES } from './supersede.ts'
import type { LeaveView } from './leave.ts'
import type { Startable } from '../startable.ts'

export interface ElectionInit {
  cluster: string
  selfId: string
  voter: boolean
  timing: Timing
  /** A voter dead for this long leaves the voter set (unless it returns first). */
  voterExpiryMs: number
  /** Peers were configured, joined or remembered: a fresh voter waits to reach them before bootstrapping. */
  knowsPeers?: () => boolean
  /** Settle time before a fresh voter may bootstrap, and the longest it waits for a group. */
  bootstrapSettleMs?: number
  bootstrapMaxWaitMs?: number
}

export interface ElectionComponents {
  node: MeshNode
  membership: Membership
  store: ElectionStore
  log: { info: (o: object, msg: string) => void, warn: (o: object, msg: string) => void, debug: (o: object, msg: string) => void }
}

export interface ElectionEvents {
  /** A committed command, in log order. */
  apply: [data: unknown, index: number]
  /** The group was left (yielded): every derived state must be rebuilt from nothing. */
  reset: []
  'leader:change': [leader: string | null, term: number]
}

export interface ElectionHeartbeat {
  group: string | null
  term: number
  leader: string | null
  role: string
  voters: number
  commit: number
  /** Groups this one replaced by a forced recovery (absent when none). */
  supersedes?: string[]
}

/** The answer to a removal: committed (with its index), or why not. */
export type RemovalResult =
  | { ok: true, reason: string, index: number }
  | { ok: false, code: 'not_leader' | 'no_quorum' | 'busy' | 'last_voter' | 'invalid' | 'timeout' | 'stopped', reason: string }

/** The answer to a forced recovery. */
export type ResetResult = { ok: true, group: string, supersedes: string, voters: string[], reason: string } | { ok: false, reason: string }

export class ProposalError extends Error {
  readonly code: 'not_leader' | 'lost' | 'timeout' | 'stopped'
  constructor (code: ProposalError['code'], message: string) {
    super(message)
    this.name = 'ProposalError'
    this.code = code
  }
}

const TICK_MS = 50
/** How long a removal waits to commit before the requester hears it did not. */
const REMOVAL_TIMEOUT_MS = 10_000
/**
 * A voter removed at its own or an operator's request is not added back
 * for this long, even if its heartbeat still says voter (it is draining
 * and about to go; heartbeats travel apart from the request).
 */
const REMOVED_HOLD_MS = 60_000
const HOUSEKEEPING_MS = 250

interface Pending { index: number, term: number, resolve: () => void, reject: (e: Error) => void, timer: NodeJS.Timeout }

export class Election extends EventEmitter<ElectionEvents> implements Startable {
  private readonly init: ElectionInit
  private readonly c: ElectionComponents
  private raft!: Raft
  private group: string | null = null
  /** Set on bootstrap or adoption; the group is written with the next Ready's term and log, in one transaction. */
  private groupUnsaved = false
  private transport: RaftTransport
  private ticker: NodeJS.Timeout | undefined
  private housekeeper: NodeJS.Timeout | undefined
  private readonly startedAt = now()
  private lastLeader: string | null = null
  private lastTerm = 0
  private readonly pending = new Map<number, Pending>()
  private readonly downSince = new Map<string, number>()
  private appliedIndex = 0
  private stopped = false
  /** Groups replaced by a forced recovery on this node (supersede.ts). */
  private supersedes: string[] = []
  /** Voters removed on request, and when: not re-added for REMOVED_HOLD_MS. */
  private readonly removedAt = new Map<string, number>()

  constructor (init: ElectionInit, components: ElectionComponents) {
    super()
    this.init = init
    this.c = components
    this.transport = new RaftTransport(init.cluster, { node: components.node, log: components.log }, (env) => { this.receive(env) })
  }

  async start (): Promise<void> {
    this.load()
    await this.transport.start()
    this.ticker = setInterval(() => { this.tick() }, TICK_MS)
    this.housekeeper = setInterval(() => { this.housekeeping() }, HOUSEKEEPING_MS)
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.ticker)
    clearInterval(this.housekeeper)
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(new ProposalError('stopped', 'the daemon is stopping')) }
    this.pending.clear()
    await this.transport.stop()
  }

  /** May this node act as the leader right now (leader, lease live, own-term entry committed)? */
  isActingLeader (): boolean {
    return !this.stopped && this.raft.isActingLeader(now())
  }

  status (): RaftStatus & { group: string | null } {
    return { ...this.raft.status(now()), group: this.group }
  }

  /**
   * The leader as this node should report it: itself only while it may act
   * (leader with a live lease); a leader whose lease lapsed (cut off, or just
   * resumed from a hang) does not claim to lead. Others report whom they
   * follow.
   */
  reportedLeader (): string | null {
    return this.reported(this.raft.status(now()))
  }

  heartbeat (): ElectionHeartbeat {
    const s = this.raft.status(now())
    const hb: ElectionHeartbeat = { group: this.group, term: s.term, leader: this.reported(s), role: s.role, voters: s.voters.length, commit: s.commitIndex }
    if (this.supersedes.length > 0) hb.supersedes = [...this.supersedes]
    return hb
  }

  private reported (s: { leader: string | null, acting: boolean }): string | null {
    if (s.leader === this.init.selfId) return s.acting ? s.leader : null
    return s.leader
  }

  /**
   * Appends a command and resolves once it is committed and applied here.
   * Rejects if this node is not the leader, loses leadership first (the
   * entry may or may not commit later: the caller decides from the state),
   * or the entry does not commit within `timeoutMs`.
   */
  propose (data: unknown, timeoutMs = 10_000): Promise<number> {
    if (this.stopped) return Promise.reject(new ProposalError('stopped', 'the daemon is stopping'))
    const r = this.raft.propose(data, now())
    if ('error' in r) return Promise.reject(new ProposalError('not_leader', `not the leader (leader: ${r.leader ?? 'unknown'})`))
    this.process()
    return this.track(r.index, r.term, timeoutMs)
  }

  /**
   * Leader: removes a voter (a machine that will not come back, or a voter
   * leaving, possibly this node) and resolves once the removal is committed.
   * Refused up front when the voters that would remain have no live
   * majority: the new config would be in force at once and leave the group
   * without a leader (raft/removal.ts). Removing one that is already out of
   * the latest config waits for that config to commit.
   */
  async removeVoter (id: string, timeoutMs = REMOVAL_TIMEOUT_MS): Promise<RemovalResult> {
    if (this.stopped) return { ok: false, code: 'stopped', reason: 'the daemon is stopping' }
    const t = now()
    if (this.raft.currentRole !== 'leader') return { ok: false, code: 'not_leader', reason: `not the leader (leader: ${this.raft.currentLeader ?? 'unknown'})` }
    const config = this.raft.latestConfig
    if (config === null) return { ok: false, code: 'invalid', reason: 'no voter set yet' }
    let index: number
    let term: number
    if (!config.voters.includes(id)) {
      index = config.index
      term = this.raft.logSlice(index, index)[0]!.term
    } else {
      const check = this.raft.removalCheck(id, t)
      if ('error' in check) return { ok: false, code: 'not_leader', reason: 'not the leader' }
      if (!check.ok) {
        return {
          ok: false,
          code: 'no_quorum',
          reason: `removing ${this.nameOf(id)} would leave ${check.of} voter(s), of which ${check.need} must confirm it, but ${check.missing.map((v) => this.nameOf(v)).join(', ')} ${check.missing.length === 1 ? 'has' : 'have'} not answered recently`
        }
      }
      const r = this.raft.proposeConfig({ remove: id }, t)
      this.process()
      if ('error' in r) {
        switch (r.error) {
          case 'not_leader': return { ok: false, code: 'not_leader', reason: `not the leader (leader: ${r.leader ?? 'unknown'})` }
          case 'change_in_progress': return { ok: false, code: 'busy', reason: 'another voter change is being committed; try again in a moment' }
          case 'leader_not_ready': return { ok: false, code: 'busy', reason: 'the leader was just elected; try again in a moment' }
          case 'last_voter': return { ok: false, code: 'last_voter', reason: `${this.nameOf(id)} is the only voter` }
          default: return { ok: false, code: 'invalid', reason: r.error }
        }
      }
      this.c.log.info({ voter: id, index: r.index }, id === this.init.selfId ? 'election: removing this node from the voter set (it is leaving)' : 'election: removing a voter on request')
      index = r.index
      term = r.term
    }
    this.removedAt.set(id, t)
    try {
      await this.track(index, term, timeoutMs)
    } catch (err) {
      const code = err instanceof ProposalError && err.code === 'stopped' ? 'stopped' : 'timeout'
      return { ok: false, code, reason: `the removal of ${this.nameOf(id)} (entry ${index}) did not commit: ${(err as Error).message}` }
    }
    const after = this.raft.latestConfig
    if (after?.voters.includes(id) === true) {
      // The leader took the change back (raft revertConfig): a voter the new set needed stopped answering.
      return { ok: false, code: 'no_quorum', reason: `the removal of ${this.nameOf(id)} was taken back: voters it needed stopped answering` }
    }
    return { ok: true, index, reason: `${this.nameOf(id)} removed from the voter set (committed at index ${index})` }
  }

  /** What a leaving voter decides from (leave.ts). */
  leaveView (): LeaveView {
    const config = this.raft.latestConfig
    return {
      group: this.group,
      voters: config?.voters ?? [],
      configCommitted: config !== null && config.index <= this.raft.currentCommit,
      self: this.init.selfId,
      role: this.raft.currentRole,
      leader: this.raft.currentLeader
    }
  }

  /**
   * Forced recovery (`meshd voters reset --force`), for a survivor whose
   * group lost its majority for good: this node becomes the only voter of a
   * new group that supersedes the old one (raft/recovery.ts, supersede.ts),
   * written durably, then elects itself. Refused while a leader is in reach
   * (then a majority is alive and `voters remove` is the tool).
   */
  forceReset (): ResetResult {
    if (this.stopped) return { ok: false, reason: 'the daemon is stopping' }
    if (this.group === null) return { ok: false, reason: 'this node is in no group yet: there is nothing to recover (it bootstraps or is added on its own)' }
    const s = this.raft.status(now())
    if (s.acting) return { ok: false, reason: 'this node is the leader of a live majority: nothing to recover (drop dead voters with `meshd voters remove ID`)' }
    if (s.leader !== null && s.leader !== this.init.selfId) return { ok: false, reason: `this node follows a leader (${this.nameOf(s.leader)}): a majority is alive, so there is nothing to recover (drop dead voters with \`meshd voters remove ID\`)` }
    if (!s.voters.includes(this.init.selfId)) return { ok: false, reason: 'this node is not in its group\'s voter set: it cannot lead the recovery (run it on a voter)' }
    const old = this.group
    const plan = forcedRecovery(this.init.selfId, this.c.store.hardState(), this.c.store.log())
    const group = newGroupId(this.init.selfId)
    const supersedes = [...this.supersedes.filter((g) => g !== old), old].slice(-MAX_SUPERSEDES)
    this.c.store.recover(plan.hardState, plan.entry, group, supersedes)
    const gone = s.voters.filter((v) => v !== this.init.selfId)
    this.c.log.warn({ from: old, to: group, term: plan.hardState.term, index: plan.entry.index, dropped: gone },
      `FORCED RECOVERY: this node is now the only voter; ${gone.length} voter(s) dropped without their consent (${gone.map((v) => this.nameOf(v)).join(', ')}). Entries the old group had not committed may now be committed. Dropped voters that come back yield and are added again as fresh voters.`)
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(new ProposalError('lost', 'the voter set was reset by force')) }
    this.pending.clear()
    this.load()
    this.emit('reset')
    this.raft.campaignSoon(now())
    this.process()
    return { ok: true, group, supersedes: old, voters: [this.init.selfId], reason: `this node is now the only voter of group ${group} (replacing ${old}); it elects itself within a few seconds` }
  }

  // ----------------------------------------------------------------------

  /** Resolves once the entry at `index` of `term` is committed and applied here (see propose). */
  private track (index: number, term: number, timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const waiting = this.pending.get(index)
      if (waiting !== undefined && waiting.term === term) {
        // Someone already waits for this entry (a retried removal): share its fate and deadline.
        const { resolve: r0, reject: j0 } = waiting
        waiting.resolve = () => { r0(); resolve(index) }
        waiting.reject = (e) => { j0(e); reject(e) }
        return
      }
      const timer = setTimeout(() => {
        this.pending.delete(index)
        reject(new ProposalError('timeout', `entry ${index} did not commit within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(index, { index, term, resolve: () => { resolve(index) }, reject, timer })
      if (this.appliedIndex >= index) this.settle(index, term)
    })
  }

  /** A member's node name for messages, with its short id; the id alone when unknown. */
  private nameOf (id: string): string {
    const m = this.c.membership.members().find((x) => x.id === id)
    const short = id.length > 12 ? `…${id.slice(-8)}` : id
    return m === undefined ? id : `${m.heartbeat.name} (${short})`
  }

  private load (): void {
    const store = this.c.store
    this.group = store.group()
    this.supersedes = store.supersedes()
    this.groupUnsaved = false
    const log = store.log()
    const hardState = store.hardState()
    this.raft = new Raft({ id: this.init.selfId, hardState, log, timing: this.init.timing, random: Math.random, now: now() })
    this.appliedIndex = 0
    this.c.log.info({ group: this.group, entries: log.length, term: hardState.term }, this.group === null ? 'election: fresh voter, no group yet' : 'election: state loaded')
  }

  private tick (): void {
    if (this.stopped) return
    this.raft.tick(now())
    this.process()
  }

  private receive (env: Envelope): void {
    if (this.stopped) return
    const verdict = admit(this.group, this.init.voter, env.group, env.msg.type)
    if (verdict === 'drop') return
    if (verdict === 'adopt') {
      // A fresh node is adopted by the first group whose leader replicates to it.
      this.group = env.group
      this.groupUnsaved = true
      this.c.log.info({ group: this.group, leader: env.msg.from }, 'election: joined a group')
    }
    this.raft.step(env.msg, now())
    this.process()
  }

  /** Does what Ready asks, in order: persist, send, apply. */
  private process (): void {
    while (this.raft.hasReady()) {
      const rd = this.raft.ready()
      if (this.groupUnsaved || rd.hardState !== undefined || rd.truncateFrom !== undefined || rd.append.length > 0) {
        // A new group goes in the same transaction as the term and log it starts
        // with: a store never holds a log without the group it belongs to.
        this.c.store.persist(rd.hardState, rd.truncateFrom, rd.append, this.groupUnsaved ? this.group! : undefined)
        this.groupUnsaved = false
      }
      for (const m of rd.messages) this.transport.send(m.to, { group: this.group, msg: m })
      for (const e of rd.committed) this.apply(e)
    }
    if (this.groupUnsaved) { // no Ready came with it (not expected: joining changes the term)
      this.c.store.persist(undefined, undefined, [], this.group!)
      this.groupUnsaved = false
    }
    // Runs after every tick and message: read the three fields, not a full status().
    const leader = this.raft.currentLeader
    const term = this.raft.currentTerm
    if (leader !== this.lastLeader || term !== this.lastTerm) {
      const role = this.raft.currentRole
      this.lastLeader = leader
      this.lastTerm = term
      this.c.log.info({ leader, term, role }, leader === null ? `election: no leader in term ${term}` : `election: leader ${leader === this.init.selfId ? 'is this node' : leader} in term ${term}`)
      this.emit('leader:change', leader, term)
      // Proposals of a term we are no longer leading may never commit (only a
      // leader names itself leader, so a non-leader fails them all).
      if (role !== 'leader') for (const p of this.pending.values()) this.fail(p, 'lost', 'leadership lost before the entry committed')
    }
  }

  private apply (e: Entry): void {
    this.appliedIndex = e.index
    if (e.kind === 'command') {
      try {
        this.emit('apply', e.data, e.index)
      } catch (err) {
        this.c.log.warn({ err, index: e.index }, 'applying a committed entry failed')
      }
    }
    this.settle(e.index, e.term)
  }

  private settle (index: number, term: number): void {
    const p = this.pending.get(index)
    if (p === undefined) return
    this.pending.delete(index)
    clearTimeout(p.timer)
    if (p.term === term) p.resolve()
    else p.reject(new ProposalError('lost', `entry ${index} was replaced by another leader's`))
  }

  private fail (p: Pending, code: ProposalError['code'], message: string): void {
    this.pending.delete(p.index)
    clearTimeout(p.timer)
    p.reject(new ProposalError(code, message))
  }

  private views (): GroupView[] {
    const self = this.init.selfId
    const out: GroupView[] = []
    for (const m of this.c.membership.members()) {
      if (m.id === self) continue
      const e = m.heartbeat.election
      out.push({
        id: m.id,
        group: e?.group ?? null,
        leader: e?.leader ?? null,
        voters: e?.voters ?? 0,
        voter: m.heartbeat.voter,
        alive: m.state === 'alive' && m.heartbeat.state !== 'left'
      })
    }
    return out
  }

  private housekeeping (): void {
    if (this.stopped) return
    const t = now()
    const others = this.views()
    if (this.group === null) {
      const v = bootstrapVerdict({ id: this.init.selfId, group: null, voters: 0, voter: this.init.voter, startedAt: this.startedAt, knowsPeers: this.init.knowsPeers?.() ?? false },
        others, t, this.init.bootstrapSettleMs ?? BOOTSTRAP_SETTLE_MS, this.init.bootstrapMaxWaitMs ?? BOOTSTRAP_MAX_WAIT_MS)
      if (v.action === 'bootstrap') {
        this.group = newGroupId(this.init.selfId)
        this.raft.bootstrap([this.init.selfId])
        this.raft.campaignSoon(now())
        this.groupUnsaved = true
        this.c.log.info({ group: this.group, reason: v.reason }, 'election: bootstrapped a new group')
        this.process()
      }
      return
    }
    const replacedBy = supersededBy(this.group, this.c.membership.members().filter((m) => m.id !== this.init.selfId).map((m) => ({
      group: m.heartbeat.election?.group ?? null,
      supersedes: m.heartbeat.election?.supersedes,
      alive: m.state === 'alive' && m.heartbeat.state !== 'left'
    })))
    if (replacedBy !== null) {
      this.c.log.warn({ from: this.group, to: replacedBy }, 'election: this group was replaced by a forced recovery (meshd voters reset --force); this node yields and rejoins as a fresh voter')
      this.resetGroup()
      return
    }
    const status = this.raft.status(t)
    const stranded = strandedVerdict({ id: this.init.selfId, group: this.group, voters: status.voters }, others)
    if (stranded.stranded) {
      this.c.log.warn({ from: this.group, reason: stranded.reason }, 'election: our group can no longer elect a leader; leaving it to be added by another')
      this.resetGroup()
      return
    }
    const ours = { group: this.group, voters: ourSize({ id: this.init.selfId, group: this.group, leader: status.leader, voters: status.voters.length }, others) }
    const y = yieldVerdict(ours, withoutSuperseded(others, this.supersedes))
    if (y.yield) {
      this.c.log.warn({ from: this.group, to: y.to, reason: y.reason }, 'election: two groups met; this one yields and rejoins the other')
      this.resetGroup()
      return
    }
    if (status.role === 'leader') this.maintainVoters(status.voters, others, t)
  }

  /** The leader's care of the voter set: one change at a time. */
  private maintainVoters (voters: string[], others: GroupView[], t: number): void {
    const byId = new Map(this.c.membership.members().map((m) => [m.id, m]))
    for (const [id, at] of this.removedAt) if (t - at >= REMOVED_HOLD_MS) this.removedAt.delete(id)
    // A voter removed on request is not added back while it drains and goes.
    const add = voterToAdd(this.group!, voters, others.filter((o) => !this.removedAt.has(o.id)))
    // Caught up first, added after: a voter that never answers (adopted by
    // another group meanwhile) must not become one we need to elect a leader.
    const caught = this.raft.catchUp(add, now())
    if (add !== null) {
      if (caught === 'caught_up') {
        const r = this.raft.proposeConfig({ add }, now())
        if (!('error' in r)) this.c.log.info({ voter: add }, 'election: adding a voter')
      }
      this.process()
      return
    }
    for (const id of voters) {
      if (id === this.init.selfId) continue
      const m = byId.get(id)
      const left = m?.state === 'left'
      if (m !== undefined && m.state === 'alive') { this.downSince.delete(id); continue }
      if (!this.downSince.has(id)) this.downSince.set(id, t)
      const expired = t - this.downSince.get(id)! >= this.init.voterExpiryMs
      if (!left && !expired) continue
      const r = this.raft.proposeConfig({ remove: id }, now())
      if (!('error' in r)) {
        this.c.log.info({ voter: id, why: left ? 'it left the mesh' : 'dead past voter_expiry' }, 'election: removing a voter')
        this.downSince.delete(id)
        this.process()
      }
      return
    }
  }

  private resetGroup (): void {
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(new ProposalError('lost', 'this node left its group')) }
    this.pending.clear()
    this.c.store.reset()
    this.group = null
    this.supersedes = []
    this.raft = new Raft({ id: this.init.selfId, hardState: { term: 0, votedFor: null }, log: [], timing: this.init.timing, random: Math.random, now: now() })
    this.appliedIndex = 0
    this.emit('reset')
  }
}

/** A new group's id: creation time first (so ids order by age where the merge rule breaks ties), then the founder. */
function newGroupId (founder: string): string {
  return `${Date.now().toString(36).padStart(9, '0')}.${founder}`
}

/** Local monotonic milliseconds: the lease is measured on this clock, never on the wall clock. */
function now (): number {
  return performance.now()
}
