/**
 * The failure detector's state function: what state a member is in, given
 * what we heard of it and when. Pure, so it is tested with a table and a fake
 * clock (test/membership/suspicion.test.ts).
 */
import type { FailureTiming } from './constants.ts'

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

/** (incarnation, seq) of a heartbeat; compared lexicographically. */
export interface Version { incarnation: number, seq: number }

export interface Liveness {
  /** Local time the latest (newest-version) heartbeat arrived. */
  heardAt: number
  version: Version
  /** Set when our last connection to the member closed; cleared on reconnect. */
  disconnectedAt: number | null
  /** The version we had heard when the connection closed. */
  versionAtDisconnect: Version | null
  /** The member said it left (state `left` in its heartbeat, or `meshd leave`). */
  left: boolean
}

export function compareVersion (a: Version, b: Version): number {
  return a.incarnation !== b.incarnation ? a.incarnation - b.incarnation : a.seq - b.seq
}

export function stateOf (l: Liveness, now: number, timing: FailureTiming): MemberState {
  if (l.left) return 'left'
  const silence = now - l.heardAt
  if (silence >= timing.deadAfterMs) return 'dead'
  if (silence >= timing.suspectAfterMs) return 'suspect'
  // A closed connection makes a member suspect at once, unless it has spoken
  // since: only a heartbeat newer than the one we had when the connection
  // closed refutes it (a late duplicate of an older one must not).
  if (l.disconnectedAt !== null && l.versionAtDisconnect !== null && compareVersion(l.version, l.versionAtDisconnect) <= 0) return 'suspect'
  return 'alive'
}
