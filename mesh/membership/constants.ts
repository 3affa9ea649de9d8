/**
 * Failure-detector timing, derived from the heartbeat interval.
 *
 * Every member hears every other member's heartbeat directly (gossipsub
 * flood-publishes a node's own messages to all its topic peers, and the mesh
 * is kept fully connected while it is small), so detection is a timeout on
 * each member's own heartbeats, plus one fast path: a member whose last
 * connection to us closes is suspect at once (a killed process's kernel closes
 * its sockets; this is what catches a kill within ~1 s on a LAN).
 *
 * A silent member (hung process, cut cable, SIGSTOP) is caught by silence:
 *
 * - suspect after SUSPECT_AFTER_HEARTBEATS intervals without a heartbeat.
 *   3.5 means three heartbeats in a row were missed, plus half an interval
 *   of slack for gossip and timer jitter: a node whose event loop is merely
 *   slowed by load (timers late by hundreds of ms) does not flap, and a hang
 *   is caught within ~4 s at the 1 s default (the acceptance bar is 6 s).
 *   memberlist's LAN preset needs a few seconds too (probe interval 1 s,
 *   suspicion multiplier 4).
 * - dead after DEAD_AFTER_HEARTBEATS intervals. Dead and suspect both get no
 *   traffic; dead is the operator's signal that it is not a blip. A member is
 *   forgotten entirely after mesh.forget_after (1 h, as spawn's registry).
 */
export const SUSPECT_AFTER_HEARTBEATS = 3.5
export const DEAD_AFTER_HEARTBEATS = 10

/** How often member states are re-evaluated, as a fraction of the heartbeat. */
export const EVALUATE_EVERY_HEARTBEATS = 0.1

export interface FailureTiming {
  heartbeatMs: number
  suspectAfterMs: number
  deadAfterMs: number
  forgetAfterMs: number
}

export function failureTiming (heartbeatMs: number, overrides: { suspectAfterMs?: number | undefined, deadAfterMs?: number | undefined, forgetAfterMs?: number | undefined } = {}): FailureTiming {
  const suspectAfterMs = overrides.suspectAfterMs ?? Math.round(heartbeatMs * SUSPECT_AFTER_HEARTBEATS)
  const deadAfterMs = Math.max(overrides.deadAfterMs ?? Math.round(heartbeatMs * DEAD_AFTER_HEARTBEATS), suspectAfterMs)
  return { heartbeatMs, suspectAfterMs, deadAfterMs, forgetAfterMs: overrides.forgetAfterMs ?? 3_600_000 }
}
