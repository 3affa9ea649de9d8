/**
 * Was this node itself stalled? A timer that fires far later than it was
 * due (a loaded host: load 10 on 2 cores; a long GC pause) says the process
 * did not run, not that the others went quiet. Node runs overdue timers
 * before the I/O that queued meanwhile, so the leader's appends (or the
 * followers' acks) are usually waiting right behind the late tick. Acting on
 * the tick at once is issue 11's false election: a follower campaigns, or a
 * leader steps down on check-quorum, over messages it has not read yet.
 *
 * The rule: when the tick is late by more than STALL_FACTOR heartbeats,
 * wait one grace period (half a heartbeat) before acting on a timeout, so
 * the queued messages are handled first. Only timing changes, never safety
 * (votes, promises and the lease do not depend on when a campaign starts or
 * a leader steps down), and a real failure costs at most one grace more,
 * and only on a node that was itself stalled.
 */
import type { Timing } from './timing.ts'

/** A tick later than this many heartbeats past its due time means we were stalled. */
export const STALL_FACTOR = 0.5

/** The grace (ms) to give queued messages, or null when the tick is on time (or not yet due). */
export function stallGrace (dueAt: number, now: number, t: Pick<Timing, 'heartbeatMs'>): number | null {
  const late = now - dueAt
  if (!(late > t.heartbeatMs * STALL_FACTOR)) return null
  return t.heartbeatMs / 2
}
