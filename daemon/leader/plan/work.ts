/**
 * One decide() call in progress: the entries and actions so far, and the
 * ledger as it will be once those entries are applied. Every entry goes
 * through the real reducer as it is made, so each later step sees the effect
 * of the earlier ones (a launch decided for a request is charged before the
 * next request is judged), and an entry the ledger would refuse is a bug
 * caught here rather than in the Raft log.
 */
import type { Offering } from '../../../providers/types.ts'
import { applyChecked, getRecord, type InstanceRecord, type LedgerState } from '../ledger/ledger.ts'
import { MAX_TEXT, parseEntry, type LedgerEntry, type RecordState, type StateEntry } from '../ledger/entries.ts'
import type { LeaderMemory } from './memory.ts'
import type { Action, BurstPolicy, DecisionReason, DecisionTally, MemberObservation } from './types.ts'

export interface Work {
  term: number
  now: number
  ledger: LedgerState
  entries: LedgerEntry[]
  actions: Action[]
  memory: LeaderMemory
  /** What the leader's own upkeep did this tick, for its decision line. */
  notes: string[]
  /** Next decision ordinal. */
  seq: number
  /** Every decision recorded in this call, for metrics. */
  decisions: DecisionTally[]
  /** What the leader's own upkeep did this tick, as reason kinds (the tick's reason is the first in DECISION_REASONS order). */
  causes: Set<DecisionReason>
}

export type EntryBody<T extends LedgerEntry> = T extends unknown ? Omit<T, 'v' | 'term' | 'at'> : never

/**
 * Records an entry in its canonical form: what every peer will hold after
 * JSON transport and parseEntry (long texts clipped, no undefined fields), so
 * the leader's ledger and its peers' are the same object. An entry peers
 * would not parse, or that the ledger refuses, is a bug in decide() and
 * throws here rather than stopping every node's log.
 */
export function emit (w: Work, body: EntryBody<LedgerEntry>): void {
  const raw = JSON.parse(JSON.stringify({ v: 1, term: w.term, at: w.now, ...body })) as Record<string, unknown>
  for (const f of ['reason', 'line']) if (typeof raw[f] === 'string') raw[f] = clip(raw[f])
  const answer = raw.answer as { reason?: unknown } | null | undefined
  if (answer != null && typeof answer.reason === 'string') answer.reason = clip(answer.reason)
  const parsed = parseEntry(raw)
  if (!parsed.ok) throw new Error(`decide: made an entry peers would not parse: ${parsed.error}`)
  const entry = JSON.parse(JSON.stringify(parsed.entry)) as LedgerEntry
  const r = applyChecked(w.ledger, entry)
  if (!r.ok) throw new Error(`decide: the ledger refuses its own ${entry.type} entry: ${r.why}`)
  w.ledger = r.state
  w.entries.push(entry)
}

export function clip (text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT - 1)}…`
}

/**
 * Adds an action for a record. A later action for the same key supersedes an
 * earlier launch or drain of this call (a re-issued launch, then a terminate
 * request: only the terminate goes out).
 */
export function act (w: Work, action: Action): void {
  w.actions = w.actions.filter((a) => a.key !== action.key || a.op === 'terminate')
  w.actions.push(action)
  w.memory.issued[action.key] = { op: action.op, at: w.now }
}

export function record (w: Work, key: string): InstanceRecord {
  const r = getRecord(w.ledger, key)
  if (r === undefined) throw new Error(`decide: no record ${key}`)
  return r
}

export function setState (w: Work, key: string, state: StateEntry['state'], reason: string, extra: { drainDeadline?: number } = {}): void {
  emit(w, { type: 'instance.state', key, state, reason, ...extra })
}

/** Terminate now: record it (intent first), then the action. */
export function terminate (w: Work, key: string, reason: string): void {
  const r = record(w, key)
  if (r.state !== 'terminating') setState(w, key, 'terminating', reason)
  act(w, { op: 'terminate', key, provider: r.provider, id: r.id, reason })
}

/**
 * Drain, then terminate once drained (lifecycle.ts): only a member that is
 * alive can drain; anything else is terminated at once.
 */
const DRAINABLE: readonly RecordState[] = ['starting', 'ready']

/** Whether drain() will drain (else it terminates at once). */
export function canDrain (r: InstanceRecord, member: MemberObservation | undefined): boolean {
  return member !== undefined && member.state === 'alive' && DRAINABLE.includes(r.state)
}

/** `until`: terminate by then even if still busy (default now + drain_timeout; an interruption's termination time). */
export function drain (w: Work, key: string, member: MemberObservation | undefined, burst: BurstPolicy, reason: string, until = w.now + burst.drainTimeoutMs): 'drain' | 'terminate' {
  const r = record(w, key)
  if (member === undefined || !canDrain(r, member)) {
    terminate(w, key, reason)
    return 'terminate'
  }
  setState(w, key, 'draining', reason, { drainDeadline: Math.max(w.now, until) })
  act(w, { op: 'drain', key, member: member.id, reason })
  return 'drain'
}

export function launch (w: Work, key: string, offering: Offering, fallbacks: Offering[], reason: string): void {
  act(w, { op: 'launch', key, offering, fallbacks, reason })
}

export function nextDecisionId (w: Work): { id: string, seq: number } {
  const seq = w.seq
  w.seq += 1
  return { id: `d${w.term}-${seq}`, seq }
}
