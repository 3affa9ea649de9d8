/**
 * Why a node knows no leader (or, on a leader, why it may not act yet), in
 * words an operator can act on: what `meshd status` shows as the election's
 * reason. Read-only: derived from a node's view, it changes nothing.
 */
import { countVotes, majority } from './quorum.ts'
import type { NoLeaderCode, Role } from './types.ts'

export interface NodeView {
  id: string
  role: Role
  term: number
  leader: string | null
  /** The latest config's voters. */
  voters: readonly string[]
  /** Local time each voter was last heard from (a leader: its latest acknowledgement); -Infinity if never. */
  lastHeard: (voter: string) => number
  /** A voter heard within this long counts as reachable. */
  windowMs: number
  now: number
}

export function noLeaderReason (v: NodeView): { code: NoLeaderCode, text: string } | null {
  if (v.role === 'follower' && v.leader !== null) return null
  const reason = (code: NoLeaderCode, text: string): { code: NoLeaderCode, text: string } => ({ code, text: `${code}: ${text}` })
  const voters = v.voters
  if (voters.length === 0) return reason('no_config', 'no config yet (not bootstrapped, and no leader has replicated to this node)')
  if (!voters.includes(v.id)) return reason('not_a_voter', v.role === 'leader' ? 'removed from the voters; stepping down once that commits' : `not among the ${voters.length} voters of the latest config`)
  const { count } = countVotes(voters, (voter) => voter === v.id || v.lastHeard(voter) > v.now - v.windowMs)
  const need = majority(voters.length)
  if (count < need) return reason('no_quorum', `${count} of ${voters.length} voters reachable, ${need} needed`)
  if (v.role === 'leader') return reason('lease_pending', `elected in term ${v.term}; waiting for a majority to acknowledge a round and commit the no-op`)
  return reason('electing', `${v.role} in term ${v.term}`)
}
