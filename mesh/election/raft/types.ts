/**
 * The data the election core exchanges with its shell: log entries, wire
 * messages, persistent state, and the Ready batch of work. All plain,
 * JSON-serialisable objects (no classes, no bigints), so the shell can
 * persist and send them as they are.
 */

/** The voter set, carried by a config entry. */
export interface ConfigData { voters: string[] }

interface EntryBase { index: number, term: number }

/**
 * A log entry. `noop` is appended by every new leader so it commits an entry
 * of its own term promptly; `config` replaces the voter set as soon as it is
 * appended; `command` carries the application's opaque JSON data.
 */
export type Entry = EntryBase & (
  | { kind: 'noop', data: null }
  | { kind: 'config', data: ConfigData }
  | { kind: 'command', data: unknown }
)

export type EntryKind = Entry['kind']

/** What must be on disk before any message that depends on it is sent. */
export interface HardState { term: number, votedFor: string | null }

interface MessageBase { from: string, to: string, term: number }

/**
 * Every message carries the sender's term. A `prevote` carries the term the
 * sender would campaign in (its term + 1) and changes no one's term.
 * `round` numbers a leader's heartbeat rounds within its term; followers echo
 * it so the leader can tell which send time a reply vouches for (lease.ts).
 */
export type Message = MessageBase & (
  | { type: 'prevote' | 'vote', lastLogIndex: number, lastLogTerm: number }
  | { type: 'prevote_resp' | 'vote_resp', granted: boolean }
  | { type: 'append', prevIndex: number, prevTerm: number, entries: Entry[], commit: number, round: number }
  | { type: 'append_resp', round: number, success: true, matchIndex: number }
  /**
   * A rejected append: the follower's log has no entry at `rejectIndex` (the
   * append's prevIndex) with the leader's term. `hintIndex`/`hintTerm` let the
   * leader skip a whole conflicting term at once instead of one entry per
   * round trip (thesis §5.3): hintTerm is the term the follower has at
   * rejectIndex (0 if its log is shorter) and hintIndex the first index it
   * holds of that term (or its lastIndex + 1).
   */
  | { type: 'append_resp', round: number, success: false, rejectIndex: number, hintIndex: number, hintTerm: number }
)

export type MessageType = Message['type']

/**
 * Everything the shell must do after calling tick/step/propose, in this
 * order: persist hardState, truncate then append the log (durably: fsync),
 * then send messages, then apply committed entries to the state machine.
 * Persisting first is what makes a vote or an acknowledgement a promise that
 * survives a crash; applying last means nothing is applied that is not
 * durable on this node.
 */
export interface Ready {
  hardState?: HardState
  /** Delete persisted entries with index >= this before appending. */
  truncateFrom?: number
  append: Entry[]
  messages: Message[]
  committed: Entry[]
}

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader'

export type NoLeaderCode = 'no_config' | 'not_a_voter' | 'no_quorum' | 'electing' | 'lease_pending'

export interface RaftStatus {
  id: string
  role: Role
  term: number
  /** The leader as this node knows it (itself when leader); null if unknown. */
  leader: string | null
  commitIndex: number
  lastIndex: number
  /** The latest config in this node's log (in effect even if uncommitted). */
  voters: string[]
  /** Leader only: local time until which it may act; null otherwise. */
  leaseUntil: number | null
  /** isActingLeader(now). */
  acting: boolean
  /** Why no leader is known (or, on a leader, why it may not act yet). */
  reason: { code: NoLeaderCode, text: string } | null
}

export type ProposeResult =
  | { index: number, term: number }
  | { error: 'not_leader', leader: string | null }

export type ConfigChange = { add: string } | { remove: string }

export type ProposeConfigResult =
  | { index: number, term: number }
  | { error: 'not_leader', leader: string | null }
  /** A config change is appended but not committed yet: one at a time. */
  | { error: 'change_in_progress' }
  /**
   * This leader has not committed an entry of its own term yet (its no-op):
   * changing config before that is the known single-server-change bug.
   * Retry after a round trip.
   */
  | { error: 'leader_not_ready' }
  /** Adding a voter that is one, or removing one that is not. */
  | { error: 'no_change' }
  /** Removing the only voter would leave no one to elect. */
  | { error: 'last_voter' }
  | { error: 'invalid_id' }
