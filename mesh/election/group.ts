/**
 * Which consensus group a voter belongs to, as pure rules.
 *
 * Raft needs its first configuration made exactly once: two nodes that each
 * bootstrap alone hold two different logs, and no Raft rule merges them. An
 * operator starts daemons one by one and joins them later, so meshd decides
 * it itself, from what the heartbeats say (every voter announces its group,
 * the group's leader, and the group's voter count):
 *
 * - bootstrap: a fresh voter joins a group it can see (that group's leader
 *   adds it); with none in sight, the fresh voter with the smallest peer id
 *   among those it sees bootstraps a group of one after a short settle time,
 *   so daemons started together make one group, not three. A voter alone for
 *   `maxWaitMs` bootstraps regardless.
 * - merge: when two groups meet (daemons bootstrapped apart, then joined),
 *   the smaller one (fewer voters; ties by group id) yields: its members wipe
 *   their election state and join the other as fresh voters. Its ledger is
 *   not copied; the winning leader adopts whatever burst capacity the losers
 *   launched when it reconciles each provider's list (instances carry the
 *   cluster's tag).
 *
 * Both rules compare only what every member of a group announces alike (the
 * leader's voter count, the group id), so all members of the losing group
 * reach the same verdict.
 */

export interface GroupView {
  id: string
  /** The member's consensus group; null when it has none yet (fresh). */
  group: string | null
  /** The leader its group has, as it knows it. */
  leader: string | null
  /** Voters in its group's configuration. */
  voters: number
  voter: boolean
  alive: boolean
}

export interface SelfView {
  id: string
  group: string | null
  voters: number
  voter: boolean
  startedAt: number
  /**
   * It was told of peers (mesh.bootstrap, a `meshd join`, peers remembered):
   * it waits to reach them before it would bootstrap a group of its own.
   */
  knowsPeers?: boolean
}

export type BootstrapVerdict = { action: 'wait', reason: string } | { action: 'bootstrap', reason: string }

export function bootstrapVerdict (self: SelfView, others: readonly GroupView[], now: number, settleMs: number, maxWaitMs: number): BootstrapVerdict {
  if (!self.voter) return { action: 'wait', reason: 'not a voter' }
  if (self.group !== null) return { action: 'wait', reason: 'already in a group' }
  // Any group in sight, even one still electing its first leader: join it
  // rather than found another (its leader will add us).
  const group = others.find((o) => o.alive && o.group !== null)
  if (group !== undefined) return { action: 'wait', reason: `group ${group.group!} exists: waiting to be added` }
  const waited = now - self.startedAt
  if (waited < settleMs) return { action: 'wait', reason: 'settling: learning who else is out there' }
  if (waited >= maxWaitMs) return { action: 'bootstrap', reason: `no group appeared in ${Math.round(maxWaitMs / 1000)} s` }
  const fresh = others.filter((o) => o.alive && o.voter && o.group === null).map((o) => o.id)
  if (self.knowsPeers === true && !others.some((o) => o.alive)) return { action: 'wait', reason: 'waiting to reach the peers it was given' }
  const lowest = [self.id, ...fresh].sort()[0]!
  if (lowest === self.id) return { action: 'bootstrap', reason: fresh.length === 0 ? 'alone: first voter of the cluster' : `lowest peer id among ${fresh.length + 1} fresh voters` }
  return { action: 'wait', reason: `the fresh voter ${lowest} bootstraps` }
}

/** Orders groups: more voters first, then the smaller group id. */
export function outranks (a: { group: string, voters: number }, b: { group: string, voters: number }): boolean {
  if (a.voters !== b.voters) return a.voters > b.voters
  return a.group < b.group
}

/**
 * Should this node's group yield to another it can see? Only groups with a
 * live leader count (a group without one may be a minority partition).
 * `ours` is what our own group's leader announces (its voter count).
 */
export function yieldVerdict (ours: { group: string, voters: number } | null, others: readonly GroupView[]): { yield: false } | { yield: true, to: string, reason: string } {
  if (ours === null) return { yield: false }
  let best: { group: string, voters: number } | null = null
  for (const o of others) {
    if (!o.alive || o.group === null || o.group === ours.group || o.leader === null || o.leader !== o.id) continue
    const g = { group: o.group, voters: o.voters }
    if (best === null || outranks(g, best)) best = g
  }
  if (best === null || !outranks(best, ours)) return { yield: false }
  return { yield: true, to: best.group, reason: `group ${best.group} (${best.voters} voters) outranks ours ${ours.group} (${ours.voters})` }
}

/**
 * A fresh voter learns who else is out there for this long before it may
 * bootstrap: members connected at start have sent a heartbeat by then
 * (1 s), and every newly connected peer gets one at once.
 */
export const BOOTSTRAP_SETTLE_MS = 1500
export const BOOTSTRAP_MAX_WAIT_MS = 15_000

/**
 * What a voter does with a Raft message from a member of group `from`:
 * step it (same group), drop it (another group, or from a node in none), or,
 * fresh itself, be adopted by that group (first append from its leader).
 */
export function admit (ours: string | null, voter: boolean, from: string | null, type: string): 'step' | 'drop' | 'adopt' {
  if (from === null) return 'drop' // a fresh node takes part in nothing
  if (ours === null) return voter && type === 'append' ? 'adopt' : 'drop'
  return from === ours ? 'step' : 'drop'
}

/**
 * The size of our group for yieldVerdict: the larger of what our own log's
 * latest config holds and what our leader last announced. Every member of a
 * group must reach the same verdict, and both numbers lag: a member's log
 * may not hold the newest config yet, a heartbeat may predate it. Groups
 * only grow while they merge, so the larger is the fresher.
 */
export function ourSize (self: { id: string, group: string, leader: string | null, voters: number }, others: readonly GroupView[]): number {
  if (self.leader === null || self.leader === self.id) return self.voters
  const l = others.find((o) => o.id === self.leader && o.alive && o.group === self.group && o.leader === o.id)
  return Math.max(self.voters, l?.voters ?? 0)
}

/**
 * Is our group beyond saving? When a majority of its voters announce another
 * group, they have wiped what they held here and will not vote in it again: no leader can be elected or keep a lease, and the
 * group would stay leaderless forever (issue 11: two leaders each added the
 * same fresh voter; it went to one, the other waited for it for good). Its
 * members leave it and are added, fresh, by a group in sight. A member that
 * announces no group is not counted: its announcement may be older than its
 * adoption.
 */
export function strandedVerdict (self: { id: string, group: string, voters: readonly string[] }, others: readonly GroupView[]): { stranded: false } | { stranded: true, reason: string } {
  if (self.voters.length === 0) return { stranded: false }
  const gone = self.voters.filter((v) => v !== self.id && others.some((o) => o.id === v && o.alive && o.group !== null && o.group !== self.group))
  const stay = self.voters.length - gone.length
  if (stay > self.voters.length / 2) return { stranded: false }
  return { stranded: true, reason: `${gone.length} of ${self.voters.length} voters of group ${self.group} are in other groups (${gone.join(', ')}): it can never elect a leader` }
}

/** The voter a leader of `ours` adds next: alive, not yet a voter, and fresh or already in our group. */
export function voterToAdd (ours: string, voters: readonly string[], others: readonly GroupView[]): string | null {
  for (const o of others) {
    if (!o.voter || !o.alive || voters.includes(o.id)) continue
    if (o.group !== null && o.group !== ours) continue // it must yield first
    return o.id
  }
  return null
}
