/**
 * What the leader remembers between two decide() calls that is not worth a
 * Raft entry: when it last issued each action (to re-issue unconfirmed ones),
 * when it last saw each burst member alive and busy, and the autoscaler's
 * recent recommendations (the stabilisation window).
 *
 * It is leader-local and starts empty on every new term: the new leader then
 * re-issues every launch and terminate the ledger shows unconfirmed (safe:
 * both are idempotent), restarts idle and absence clocks from its own start
 * (never retiring anything early), and waits a full window before scaling
 * down. Plain JSON, threaded through decide() by the shell.
 */
import type { Action } from './types.ts'

export interface Recommendation {
  at: number
  /** Burst instances the policy wanted at `at`, before stabilisation. */
  desired: number
}

export interface LeaderMemory {
  /** The term this memory belongs to; another term starts afresh. */
  term: number
  /** The first decide() of this leadership. */
  since: number
  /** Decision ordinals already handed out (ids must not repeat even before they commit). */
  nextSeq: number
  /** Decisions of the previous call that the ledger does not show yet. */
  awaiting: { ids: string[], since: number } | null
  issued: Record<string, { op: Action['op'], at: number }>
  /** Burst member (by key) last seen alive. */
  lastSeen: Record<string, number>
  /** Burst member (by key) last seen with work (in flight, queued or qps > 0). */
  busyAt: Record<string, number>
  recommendations: Recommendation[]
  /** Since when the queue has been below half the threshold (spawn's scale-down condition). */
  shallowSince: number | null
}

export function newMemory (term: number, now: number): LeaderMemory {
  return { term, since: now, nextSeq: 0, awaiting: null, issued: {}, lastSeen: {}, busyAt: {}, recommendations: [], shallowSince: null }
}

/** The memory to use for this term: the given one if it is this term's, else a fresh one. */
export function memoryFor (m: LeaderMemory | undefined, term: number, now: number): LeaderMemory {
  return m !== undefined && m.term === term ? m : newMemory(term, now)
}

export function clone (m: LeaderMemory): LeaderMemory {
  return {
    ...m,
    awaiting: m.awaiting === null ? null : { ids: [...m.awaiting.ids], since: m.awaiting.since },
    issued: { ...m.issued },
    lastSeen: { ...m.lastSeen },
    busyAt: { ...m.busyAt },
    recommendations: [...m.recommendations]
  }
}

/** Forgets keys the ledger no longer tracks. */
export function prune (m: LeaderMemory, keep: ReadonlySet<string>): void {
  for (const map of [m.issued, m.lastSeen, m.busyAt]) {
    for (const k of Object.keys(map)) if (!keep.has(k)) delete map[k]
  }
}
