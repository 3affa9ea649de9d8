/**
 * What a voter leaving the mesh (`meshd leave`) must do first, as a pure
 * rule: get its own removal from the voter set committed, so the voters that
 * stay count quorum without it. Leaving without it strands them: in a group
 * of two, the survivor still needs the leaver's vote and can elect no one.
 *
 * - the leader proposes its own removal; once committed it steps down (raft
 *   maybeCommit) and the others elect a leader among themselves;
 * - a follower asks the leader to remove it and waits for the commit;
 * - nothing to do when this node is in no group, out of a committed config, or
 *   the only voter (no one stays behind to count it).
 */

export interface LeaveView {
  /** This node's consensus group; null while fresh (never added). */
  group: string | null
  /** The voters of the latest config in this node's log. */
  voters: readonly string[]
  /** That config is committed as far as this node knows. */
  configCommitted: boolean
  self: string
  role: string
  /** The leader this node follows, if it knows one. */
  leader: string | null
}

export type LeaveStep =
  | { done: 'not_in_group' | 'not_a_voter' | 'only_voter' }
  | { act: 'remove_self' }
  | { act: 'ask_leader', leader: string }
  | { act: 'wait', why: string }

export function leaveStep (v: LeaveView): LeaveStep {
  if (v.group === null) return { done: 'not_in_group' }
  const member = v.voters.includes(v.self)
  if (!member && v.configCommitted) return { done: 'not_a_voter' }
  if (member && v.voters.length === 1) return { done: 'only_voter' }
  // Our removal may be in the log but not known committed (an earlier try
  // timed out; a removed follower is not told of the commit): the leader
  // answers once it is.
  if (v.role === 'leader') return { act: 'remove_self' }
  if (v.leader !== null && v.leader !== v.self) return { act: 'ask_leader', leader: v.leader }
  return { act: 'wait', why: 'no leader known (an election is under way, or no majority of the voters is reachable)' }
}
