/**
 * Raft (Ongaro's thesis) as a pure state machine: pre-vote (§9.6),
 * check-quorum and leader stickiness, a leader lease (lease.ts), log
 * replication with fast back-off, single-server membership changes (§4.1),
 * no-op on election.
 *
 * Like etcd's raft, it does no I/O and reads no clock or randomness of its
 * own: the shell passes the local monotonic time into every call and a
 * random source at construction, feeds it messages with step(), calls tick()
 * (at wakeAt(), or every ~50 ms), and after every call drains ready() and
 * does what it says in order (persist, send, apply; see Ready in types.ts).
 * Everything observable happens through ready(), so a node restarted from
 * what it persisted through ready() is a correct Raft node.
 */
import { MAX_ENTRIES_PER_APPEND } from './constants.ts'
import { LeaseTracker } from './lease.ts'
import { RaftLog } from './log.ts'
import { ReplicationProgress } from './progress.ts'
import { noLeaderReason } from './diagnosis.ts'
import { countVotes } from './quorum.ts'
import { removalQuorum, type RemovalCheck } from './removal.ts'
import { electionTimeout, leaseMs, promiseMs, validateTiming, type Timing } from './timing.ts'
import { stallGrace } from './stall.ts'
import type {
  ConfigChange, Entry, HardState, Message, NoLeaderCode, ProposeConfigResult, ProposeResult, RaftStatus, Ready, Role
} from './types.ts'

/** A broken Raft guarantee detected at run time; the node must stop, not guess. */
export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError'
}

export interface RaftInit {
  id: string
  /** As persisted through ready(); { term: 0, votedFor: null } on a fresh node. */
  hardState: HardState
  /** As persisted through ready(), from index 1; [] on a fresh node. */
  log: readonly Entry[]
  timing: Timing
  /** Uniform in [0, 1); only election timeouts use it. */
  random: () => number
  /**
   * Local monotonic time now. Starts the start-up promise: a restarted node
   * grants no vote for electionTimeoutMin, because the promise it may have
   * made before crashing was only in memory (lease.ts).
   */
  now: number
  /**
   * The index the shell's state machine has already applied (it persists
   * this with its own state); entries up to it are committed and are not
   * handed out again. 0 if the state machine is rebuilt from the log.
   */
  applied?: number
}

type VoteRequest = Extract<Message, { lastLogIndex: number }>

export class Raft {
  readonly id: string
  private readonly timing: Required<Timing>
  private readonly leaseMs: number
  private readonly random: () => number
  private readonly log: RaftLog

  private term: number
  private votedFor: string | null
  private hardStateDirty = false
  private role: Role = 'follower'
  private leader: string | null = null
  private commitIndex: number
  private applied: number
  private lastNow: number

  /** No vote (or pre-vote) is granted, to anyone or to ourselves, before this local time. */
  private voteFloor: number
  private electionDeadline: number
  /** Leader: check-quorum waits until this local time after a stall of our own (tick). */
  private quorumGraceUntil = -Infinity
  /** Failed pre-vote rounds in a row; paces the retries (see startPreVote). */
  private preVoteAttempts = 0
  /** Pre-vote or vote replies in the current campaign. */
  private votes = new Map<string, boolean>()

  // Leader state, reset on every election.
  private progress = new ReplicationProgress()
  private lease: LeaseTracker | null = null
  private nextHeartbeatAt = 0
  /** Index of this leader's no-op; committed ⇔ it has committed an entry of its term. */
  private noopIndex = 0
  /** A server being caught up before it is added (thesis §4.2.1); replicated to, never counted. */
  private learner: string | null = null

  /** Local time we last heard anything from each peer; for status only. */
  private readonly heardAt = new Map<string, number>()
  private outbox: Message[] = []

  constructor (init: RaftInit) {
    if (init.id === '') throw new RangeError('id must not be empty')
    if (!Number.isFinite(init.now)) throw new RangeError('now must be a finite number')
    this.id = init.id
    this.timing = validateTiming(init.timing)
    this.leaseMs = leaseMs(this.timing)
    this.random = init.random
    this.log = new RaftLog(init.log)
    this.term = init.hardState.term
    this.votedFor = init.hardState.votedFor
    if (this.log.lastTerm() > this.term) throw new RaftInvariantError(`log term ${this.log.lastTerm()} above hard state term ${this.term}`)
    const applied = init.applied ?? 0
    if (!(Number.isSafeInteger(applied) && applied >= 0 && applied <= this.log.lastIndex())) throw new RangeError(`applied ${applied} outside the log (last index ${this.log.lastIndex()})`)
    this.commitIndex = applied
    this.applied = applied
    this.lastNow = init.now
    this.voteFloor = init.now + promiseMs(this.timing)
    this.electionDeadline = init.now + electionTimeout(this.timing, this.random)
  }

  // ---------------------------------------------------------------- inputs

  /**
   * Creates the initial config at index 1 (term 1) on a fresh node. Every
   * node bootstrapped must get the same voters (or bootstrap one node with
   * itself and grow the cluster with proposeConfig): two different configs at
   * (1, 1) would break log matching. A fresh node that is not bootstrapped
   * never campaigns; it learns the config from a leader's appends.
   */
  bootstrap (voters: readonly string[]): void {
    if (this.log.lastIndex() !== 0 || this.term !== 0) throw new RaftInvariantError('bootstrap needs a fresh node (empty log, term 0)')
    if (voters.length === 0 || new Set(voters).size !== voters.length || voters.some(v => v === '')) throw new RangeError('bootstrap needs distinct, non-empty voter ids')
    this.setTerm(1)
    this.log.append({ index: 1, term: 1, kind: 'config', data: { voters: [...voters] } })
  }

  /**
   * Lets the election timer run out now, so the next tick campaigns (etcd's
   * Campaign): a node that just bootstrapped a group of one need not wait a
   * whole timeout for a leader. Timing only: no safety argument depends on
   * when an election starts; the vote floor and pre-vote still apply.
   */
  campaignSoon (now: number): void {
    this.advanceClock(now)
    if (this.role !== 'leader') this.electionDeadline = now
  }

  /** Drives heartbeats, check-quorum and election timeouts. */
  tick (now: number): void {
    this.advanceClock(now)
    // A tick far later than it was due means this process was stalled (a
    // loaded host, a GC pause): Node runs the overdue timer before the
    // messages that queued meanwhile, so what looks like the leader's (or a
    // majority's) silence is most likely our own. Let those messages in
    // first: one grace period, then the rules apply as usual (stall.ts).
    const grace = stallGrace(this.role === 'leader' ? this.nextHeartbeatAt : this.electionDeadline, now, this.timing)
    if (grace !== null) {
      if (this.role === 'leader') {
        this.quorumGraceUntil = now + grace
        this.broadcast(now)
      } else {
        this.electionDeadline = now + grace
      }
      return
    }
    if (this.role === 'leader') {
      if (now >= this.quorumGraceUntil && !this.hasRecentQuorum(now) && !this.revertStalledChange(now)) {
        // Check-quorum: a leader cut off from a majority steps down so its
        // status says so and clients go elsewhere; safety does not depend
        // on it (the lease has expired by then anyway).
        this.becomeFollower(this.term, null, now)
        return
      }
      if (now >= this.nextHeartbeatAt) this.broadcast(now)
      return
    }
    if (now < this.electionDeadline) return
    if (this.canCampaign(now)) {
      this.startPreVote(now)
    } else {
      if (this.role !== 'follower') this.becomeFollower(this.term, null, now)
      this.resetElectionDeadline(now)
    }
  }

  /** Handles one message received at local time `now` (read after it arrived). */
  step (msg: Message, now: number): void {
    this.advanceClock(now)
    if (msg.to !== this.id || msg.from === this.id) return
    this.heardAt.set(msg.from, now)

    if (msg.term > this.term) {
      if (msg.type === 'prevote' || msg.type === 'vote') {
        // Stickiness, and the follower half of the lease: within the promise
        // window a (pre)vote request is ignored outright — not even our term
        // moves — so a rejoining or removed node cannot depose a live leader.
        if (now < this.voteFloor) return
        if (msg.type === 'vote') this.becomeFollower(msg.term, null, now)
      } else if (msg.type === 'prevote_resp' && msg.granted) {
        // A granted pre-vote carries the term we would campaign in; it
        // changes no one's term.
      } else {
        this.becomeFollower(msg.term, msg.type === 'append' ? msg.from : null, now)
      }
    } else if (msg.term < this.term) {
      // A stale leader learns of the newer term from our reply and steps
      // down; a stale pre-candidate learns it too. Anything else is dropped.
      if (msg.type === 'append') {
        this.send({ type: 'append_resp', from: this.id, to: msg.from, term: this.term, round: msg.round, success: false, rejectIndex: msg.prevIndex, hintIndex: this.log.lastIndex() + 1, hintTerm: 0 })
      } else if (msg.type === 'prevote') {
        this.send({ type: 'prevote_resp', from: this.id, to: msg.from, term: this.term, granted: false })
      }
      return
    }

    switch (msg.type) {
      case 'prevote': return this.handlePreVote(msg, now)
      case 'vote': return this.handleVote(msg, now)
      case 'prevote_resp':
        if (this.role === 'precandidate' && msg.term === this.term + 1) {
          this.votes.set(msg.from, msg.granted)
          if (this.tally().won) this.becomeCandidate(now)
        }
        return
      case 'vote_resp':
        if (this.role === 'candidate' && msg.term === this.term) {
          this.votes.set(msg.from, msg.granted)
          if (this.tally().won) this.becomeLeader(now)
        }
        return
      case 'append': return this.handleAppend(msg, now)
      case 'append_resp': return this.handleAppendResp(msg, now)
    }
  }

  /** Appends a command on the leader. Replicated with the next round, or at once to followers that are caught up. */
  propose (data: unknown, now: number): ProposeResult {
    this.advanceClock(now)
    if (this.role !== 'leader') return { error: 'not_leader', leader: this.leader }
    if (data === undefined) throw new RangeError('command data must be JSON (not undefined)')
    const index = this.log.lastIndex() + 1
    this.log.append({ index, term: this.term, kind: 'command', data })
    this.replicateNew(index)
    this.maybeCommit(now)
    return { index, term: this.term }
  }

  /**
   * Catches a server up as a non-voter before it is added (thesis §4.2.1):
   * the leader replicates to it without counting it in any majority, and
   * reports 'caught_up' once it holds every committed entry, i.e. once it has
   * answered as a member of this log. Only then is adding it safe for
   * availability: adding a server that never answers (it went to another
   * group, or is unreachable) makes a group of one need two votes, and that
   * group can never elect a leader again. One learner at a time; null stops.
   */
  catchUp (id: string | null, now: number): 'caught_up' | 'catching_up' | 'not_leader' | 'no_change' {
    this.advanceClock(now)
    if (this.role !== 'leader') return 'not_leader'
    if (id === this.id || (id !== null && this.voters().includes(id))) return 'no_change'
    if (id !== this.learner) {
      this.learner = id
      this.syncProgress(now)
      if (id !== null) this.sendAppend(id)
      return id === null ? 'no_change' : 'catching_up'
    }
    if (id === null) return 'no_change'
    const pr = this.progress.get(id)
    return pr !== undefined && pr.match >= this.commitIndex && pr.match > 0 ? 'caught_up' : 'catching_up'
  }

  /** Proposes adding or removing one voter (thesis §4.1); the leader applies it as soon as it is appended. */
  proposeConfig (change: ConfigChange, now: number): ProposeConfigResult {
    this.advanceClock(now)
    if (this.role !== 'leader') return { error: 'not_leader', leader: this.leader }
    const id = 'add' in change ? change.add : change.remove
    if (typeof id !== 'string' || id === '') return { error: 'invalid_id' }
    const config = this.log.config()!
    if (config.index > this.commitIndex) return { error: 'change_in_progress' }
    // The single-server-change fix: a new leader must commit an entry of its
    // own term before changing config, or a config from a deposed leader's
    // uncommitted change could combine with ours into disjoint majorities.
    if (this.commitIndex < this.noopIndex) return { error: 'leader_not_ready' }
    let voters: string[]
    if ('add' in change) {
      if (config.voters.includes(id)) return { error: 'no_change' }
      voters = [...config.voters, id]
    } else {
      if (!config.voters.includes(id)) return { error: 'no_change' }
      if (config.voters.length === 1) return { error: 'last_voter' }
      voters = config.voters.filter(v => v !== id)
    }
    const index = this.log.lastIndex() + 1
    this.log.append({ index, term: this.term, kind: 'config', data: { voters } })
    this.syncProgress(now)
    this.replicateNew(index)
    this.maybeCommit(now)
    return { index, term: this.term }
  }

  /**
   * Leader only: would removing `id` commit now (removal.ts)? A voter counts
   * as live if it has acknowledged an append of this term within the last
   * two heartbeats (a live follower answers every round, one heartbeat
   * apart), so a voter that died more than that ago is caught here; one that
   * dies in the instant after is what revertConfig is for. Ask it right
   * before proposeConfig({ remove }) when the removal is a choice (a voter
   * leaving, an operator's request), not forced by a death.
   */
  removalCheck (id: string, now: number): RemovalCheck | { error: 'not_leader', leader: string | null } {
    this.advanceClock(now)
    if (this.role !== 'leader') return { error: 'not_leader', leader: this.leader }
    const since = now - 2 * this.timing.heartbeatMs
    return removalQuorum(this.voters(), id, this.id, (v) => {
      const pr = this.progress.get(v)
      return pr !== undefined && pr.match > 0 && pr.lastAckAt >= since
    })
  }

  /**
   * Leader only: takes back the latest config change while it is still
   * uncommitted (a removal whose new majority stopped answering, which would
   * otherwise leave the group unable to elect anyone) by appending the config
   * before it again. Safe under the single-server rule: the entry repeats the
   * committed config the change started from, and differs by one voter from
   * the uncommitted one, so any two configs a node may be using still share
   * a majority. Works for a leader that removed itself too (it is back in
   * the config it appends, and counts itself again).
   */
  revertConfig (now: number): ProposeConfigResult {
    this.advanceClock(now)
    if (this.role !== 'leader') return { error: 'not_leader', leader: this.leader }
    const config = this.log.config()!
    const previous = this.log.previousConfig()
    // Only a change made from a committed config (a take-back is not taken back).
    if (config.index <= this.commitIndex || previous === null || previous.index > this.commitIndex) return { error: 'no_change' }
    const index = this.log.lastIndex() + 1
    this.log.append({ index, term: this.term, kind: 'config', data: { voters: [...previous.voters] } })
    this.syncProgress(now)
    this.replicateNew(index)
    this.maybeCommit(now)
    return { index, term: this.term }
  }

  // --------------------------------------------------------------- outputs

  /** The current role and term, cheaply (status() computes more). */
  get currentRole (): Role { return this.role }
  get currentTerm (): number { return this.term }
  get currentCommit (): number { return this.commitIndex }
  get currentLeader (): string | null { return this.leader }
  /** The latest config entry (in force even if uncommitted), or null before any. */
  get latestConfig (): { index: number, voters: readonly string[] } | null { return this.log.config() }

  /** Entries from..to of the in-memory log, persisted or not; for diagnostics and tests. */
  logSlice (from = 1, to = Infinity): Entry[] {
    return this.log.slice(Math.max(1, from), Math.min(to, this.log.lastIndex()))
  }

  /** True when ready() has something for the shell. */
  hasReady (): boolean {
    return this.hardStateDirty || this.log.hasUnstable() || this.outbox.length > 0 || this.applied < this.commitIndex
  }

  /** Drains the work accumulated since the last call; the shell must do all of it, in order. */
  ready (): Ready {
    const { truncateFrom, append } = this.log.drainUnstable()
    const rd: Ready = { append, messages: this.outbox, committed: this.log.slice(this.applied + 1, this.commitIndex) }
    if (truncateFrom !== undefined) rd.truncateFrom = truncateFrom
    if (this.hardStateDirty) rd.hardState = { term: this.term, votedFor: this.votedFor }
    this.hardStateDirty = false
    this.outbox = []
    this.applied = this.commitIndex
    return rd
  }

  /** The local time by which tick() should next be called (never later than a heartbeat away). */
  wakeAt (): number {
    if (this.role === 'leader') {
      const quorumLapse = this.quorumContactAt() + promiseMs(this.timing)
      return Math.min(this.nextHeartbeatAt, quorumLapse)
    }
    return this.electionDeadline
  }

  /**
   * May this node act as the leader at local time `now`? Leader, in its own
   * latest config, has committed an entry of its term (so its log, once
   * applied, holds every committed decision: the ledger it acts on is
   * complete; the lease proof in lease.ts relies on it too), and its lease
   * is live. Call it right before each action with a freshly read clock.
   */
  isActingLeader (now: number): boolean {
    if (this.role !== 'leader' || this.commitIndex < this.noopIndex) return false
    const voters = this.voters()
    if (!voters.includes(this.id)) return false
    const until = this.lease!.until(voters, this.id)
    return until !== null && now < until
  }

  status (now: number): RaftStatus {
    const voters = [...this.voters()]
    const acting = this.isActingLeader(now)
    const leaseUntil = this.role === 'leader' ? this.lease!.until(voters, this.id) : null
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.leader,
      commitIndex: this.commitIndex,
      lastIndex: this.log.lastIndex(),
      voters,
      leaseUntil,
      acting,
      reason: acting ? null : this.noLeaderReason(now, voters)
    }
  }

  // ------------------------------------------------------------- elections

  private canCampaign (now: number): boolean {
    // A node absent from its latest config never campaigns (this also keeps
    // an empty, never-bootstrapped node quiet), and nobody votes for itself
    // inside its own promise window.
    return this.voters().includes(this.id) && now >= this.voteFloor
  }

  private startPreVote (now: number): void {
    this.role = 'precandidate'
    this.leader = null
    this.votes = new Map([[this.id, true]])
    // A pre-vote that fails is retried sooner than a full election timeout:
    // the usual reason it fails right after a leader dies is that the others'
    // promises, timed from a heartbeat they received a few ms later or on a
    // slower clock, have not quite run out yet. Pre-votes change no term, so
    // retrying is harmless; the interval doubles (250–500 ms, 500–1000 ms, …,
    // up to the election timeout) so a node cut off for long stays quiet.
    const base = Math.min(this.timing.electionTimeoutMaxMs, this.timing.heartbeatMs * 2 ** this.preVoteAttempts)
    this.preVoteAttempts++
    this.electionDeadline = now + base * (0.5 + 0.5 * this.random())
    for (const v of this.voters()) {
      if (v !== this.id) this.send({ type: 'prevote', from: this.id, to: v, term: this.term + 1, lastLogIndex: this.log.lastIndex(), lastLogTerm: this.log.lastTerm() })
    }
    if (this.tally().won) this.becomeCandidate(now)
  }

  private becomeCandidate (now: number): void {
    if (!this.canCampaign(now)) throw new RaftInvariantError('campaign inside the promise window')
    this.preVoteAttempts = 0
    this.setTerm(this.term + 1)
    this.votedFor = this.id
    this.role = 'candidate'
    this.leader = null
    this.votes = new Map([[this.id, true]])
    this.resetElectionDeadline(now)
    for (const v of this.voters()) {
      if (v !== this.id) this.send({ type: 'vote', from: this.id, to: v, term: this.term, lastLogIndex: this.log.lastIndex(), lastLogTerm: this.log.lastTerm() })
    }
    if (this.tally().won) this.becomeLeader(now)
  }

  private tally (): { count: number, won: boolean } {
    return countVotes(this.voters(), v => this.votes.get(v) === true)
  }

  private handlePreVote (msg: VoteRequest, now: number): void {
    // msg.term ≤ our term here means the sender would campaign in a term we
    // have already reached: refuse and tell it our term.
    const granted = msg.term > this.term && now >= this.voteFloor && this.log.isUpToDate(msg.lastLogIndex, msg.lastLogTerm)
    this.send({ type: 'prevote_resp', from: this.id, to: msg.from, term: granted ? msg.term : this.term, granted })
    if (granted && this.role === 'precandidate' && msg.term === this.term + 1 && msg.from < this.id) {
      // Two survivors that time out within a round trip of each other would
      // both pass the pre-vote and split the real vote, costing a whole
      // extra election timeout (the slow tail of failover). The one with the
      // larger id steps back briefly; if the other does not win, it retries
      // after a short pause. Pre-votes change no term: this is liveness only.
      this.role = 'follower'
      this.votes = new Map()
      this.electionDeadline = now + this.timing.heartbeatMs * (0.5 + 0.5 * this.random())
    }
  }

  private handleVote (msg: VoteRequest, now: number): void {
    const granted = (this.votedFor === null || this.votedFor === msg.from) &&
      now >= this.voteFloor &&
      this.log.isUpToDate(msg.lastLogIndex, msg.lastLogTerm)
    if (granted) {
      if (this.votedFor !== msg.from) {
        this.votedFor = msg.from
        this.hardStateDirty = true
      }
      this.resetElectionDeadline(now)
    }
    this.send({ type: 'vote_resp', from: this.id, to: msg.from, term: this.term, granted })
  }

  private becomeFollower (term: number, leader: string | null, now: number): void {
    if (leader !== null) this.preVoteAttempts = 0
    if (term > this.term) {
      this.setTerm(term)
      this.votedFor = null
    }
    this.role = 'follower'
    this.leader = leader
    this.votes = new Map()
    this.progress = new ReplicationProgress()
    this.lease = null
    this.noopIndex = 0
    this.learner = null
    this.resetElectionDeadline(now)
  }

  private becomeLeader (now: number): void {
    this.role = 'leader'
    this.leader = this.id
    this.votes = new Map()
    this.lease = new LeaseTracker(this.leaseMs)
    this.progress = new ReplicationProgress()
    this.learner = null
    this.syncProgress(now)
    this.noopIndex = this.log.lastIndex() + 1
    this.log.append({ index: this.noopIndex, term: this.term, kind: 'noop', data: null })
    this.broadcast(now)
    this.maybeCommit(now)
  }

  private resetElectionDeadline (now: number): void {
    this.electionDeadline = now + electionTimeout(this.timing, this.random)
  }

  /**
   * Check-quorum found no live majority: if that is because of an
   * uncommitted config change (a voter removed just as one it now needs
   * died), take the change back (revertConfig) and keep leading when the
   * config before it still has a live majority. Without it the change would
   * stay in force on every node that has it, and the group could elect no
   * one until the dead voter returns.
   */
  private revertStalledChange (now: number): boolean {
    const config = this.log.config()
    if (config === null || config.index <= this.commitIndex) return false
    const previous = this.log.previousConfig()
    if (previous === null || previous.index > this.commitIndex) return false
    if (this.progress.quorumContactAt(previous.voters, this.id, now) + promiseMs(this.timing) <= now) return false
    this.revertConfig(now)
    return this.hasRecentQuorum(now)
  }

  // ----------------------------------------------------------- replication

  /** Starts a round: records its send time, renews our own promise, sends appends to every peer. */
  private broadcast (now: number): void {
    this.lease!.startRound(now)
    // The leader counts itself in the lease majority for this round, so it
    // makes a follower's promise too: no vote for anyone until now + E.
    this.voteFloor = Math.max(this.voteFloor, now + promiseMs(this.timing))
    this.nextHeartbeatAt = now + this.timing.heartbeatMs
    for (const peer of this.progress.targets()) this.sendAppend(peer)
  }

  /** Sends a just-appended entry at once to followers that already have everything before it. */
  private replicateNew (index: number): void {
    for (const peer of this.progress.caughtUpBefore(index)) this.sendAppend(peer)
  }

  private sendAppend (peer: string): void {
    const pr = this.progress.get(peer)!
    const prevIndex = pr.next - 1
    this.send({
      type: 'append',
      from: this.id,
      to: peer,
      term: this.term,
      prevIndex,
      prevTerm: this.log.term(prevIndex)!,
      entries: this.log.slice(pr.next, this.log.lastIndex(), MAX_ENTRIES_PER_APPEND),
      commit: this.commitIndex,
      round: this.lease!.currentRound()
    })
  }

  /**
   * Replication targets: the latest config, plus — while that config is
   * uncommitted — the voters it removed, so a removed node is likely to learn
   * of its removal (and stop campaigning) before we stop talking to it, plus
   * the learner being caught up.
   */
  private syncProgress (now: number): void {
    const config = this.log.config()!
    const targets = new Set(config.voters)
    if (config.index > this.commitIndex) for (const v of this.log.previousConfig()?.voters ?? []) targets.add(v)
    if (this.learner !== null) {
      if (config.voters.includes(this.learner)) this.learner = null // added: a voter now
      else targets.add(this.learner)
    }
    targets.delete(this.id)
    this.progress.retarget(targets, this.log.lastIndex(), now)
  }

  private handleAppend (msg: Extract<Message, { type: 'append' }>, now: number): void {
    if (this.role === 'leader') return // same term, two leaders: impossible; never act on it
    if (this.role !== 'follower' || this.leader !== msg.from) this.becomeFollower(this.term, msg.from, now)
    // The follower half of the lease: promise no vote until now + E. Made on
    // every append from our leader, accepted or not, before replying.
    this.voteFloor = Math.max(this.voteFloor, now + promiseMs(this.timing))
    this.resetElectionDeadline(now)

    const reply = { type: 'append_resp' as const, from: this.id, to: msg.from, term: this.term, round: msg.round }
    const have = this.log.term(msg.prevIndex)
    if (have === undefined) {
      this.send({ ...reply, success: false, rejectIndex: msg.prevIndex, hintIndex: this.log.lastIndex() + 1, hintTerm: 0 })
      return
    }
    if (have !== msg.prevTerm) {
      if (msg.prevIndex <= this.commitIndex) throw new RaftInvariantError(`leader ${msg.from} disagrees at committed index ${msg.prevIndex}`)
      const hintIndex = Math.max(this.commitIndex + 1, this.log.firstIndexOfTermAt(msg.prevIndex))
      this.send({ ...reply, success: false, rejectIndex: msg.prevIndex, hintIndex, hintTerm: have })
      return
    }
    const truncatedAt = this.log.merge(msg.entries)
    if (truncatedAt !== undefined && truncatedAt <= this.commitIndex) throw new RaftInvariantError(`append from ${msg.from} truncates committed index ${truncatedAt}`)
    const matchIndex = msg.prevIndex + msg.entries.length
    const commit = Math.min(msg.commit, matchIndex)
    if (commit > this.commitIndex) this.commitIndex = commit
    this.send({ ...reply, success: true, matchIndex })
  }

  private handleAppendResp (msg: Extract<Message, { type: 'append_resp' }>, now: number): void {
    if (this.role !== 'leader') return
    const pr = this.progress.get(msg.from)
    if (pr === undefined) return
    pr.lastAckAt = now
    this.lease!.ack(msg.from, msg.round)
    if (msg.success) {
      if (msg.matchIndex > this.log.lastIndex()) return // not something we sent
      if (this.progress.matched(pr, msg.matchIndex, msg.round)) this.maybeCommit(now)
      if (this.role === 'leader' && this.progress.has(msg.from) && pr.next <= this.log.lastIndex()) this.sendAppend(msg.from)
      return
    }
    if (this.progress.lostLog(pr, msg)) {
      // Its promises are void; replicate to it from where its log now ends,
      // as to a new server, or it would be probed above its log forever.
      // Commits already made stand (we never move commitIndex back); until it
      // holds them again they rest on fewer nodes, as after a lost disk.
      pr.match = msg.hintIndex - 1
      pr.next = msg.hintIndex
      pr.matchRound = msg.round
      this.sendAppend(msg.from)
      return
    }
    if (this.progress.backOff(pr, msg, (term, upTo) => this.log.lastIndexOfTerm(term, upTo))) this.sendAppend(msg.from)
  }

  /**
   * Commits the highest index a majority of the latest config holds, but
   * only if it is of our term (thesis §3.6.2: earlier terms' entries commit
   * indirectly). The leader counts itself only while it is in the config.
   */
  private maybeCommit (now: number): void {
    const voters = this.voters()
    const q = this.progress.quorumMatch(voters, this.id, this.log.lastIndex())
    if (q <= this.commitIndex || this.log.term(q) !== this.term) return
    this.commitIndex = q
    const config = this.log.config()!
    if (config.index <= this.commitIndex) {
      this.syncProgress(now) // the previous config's removed voters are no longer targets
      if (!config.voters.includes(this.id)) {
        // Our removal is committed: tell the others (so they commit it too),
        // then step down. They elect a leader among themselves after the
        // promise this last round renews.
        this.broadcast(now)
        this.becomeFollower(this.term, null, now)
      }
    }
  }

  /** The latest local time such that a majority of voters have replied since (us counting as now). */
  private quorumContactAt (): number {
    return this.progress.quorumContactAt(this.voters(), this.id, this.lastNow)
  }

  private hasRecentQuorum (now: number): boolean {
    return this.quorumContactAt() + promiseMs(this.timing) > now
  }

  // --------------------------------------------------------------- helpers

  private voters (): string[] {
    return this.log.config()?.voters ?? []
  }

  private setTerm (term: number): void {
    this.term = term
    this.hardStateDirty = true
  }

  private send (msg: Message): void {
    this.outbox.push(msg)
  }

  private advanceClock (now: number): void {
    // A clock that runs backwards breaks every timing argument here; it is
    // a shell bug (use a monotonic clock), so fail loudly.
    if (!(now >= this.lastNow)) throw new RangeError(`local clock went backwards: ${now} < ${this.lastNow}`)
    this.lastNow = now
  }

  private noLeaderReason (now: number, voters: string[]): { code: NoLeaderCode, text: string } | null {
    const leading = this.role === 'leader'
    return noLeaderReason({
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.leader,
      voters,
      lastHeard: (v) => (leading ? this.progress.get(v)?.lastAckAt : this.heardAt.get(v)) ?? -Infinity,
      windowMs: leading ? promiseMs(this.timing) : 2 * this.timing.electionTimeoutMaxMs,
      now
    })
  }
}
