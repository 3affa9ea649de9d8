/**
 * After a forced recovery (`meshd voters reset --force`) the survivor runs a
 * new group that replaces the old one; it announces the old group's id in
 * its heartbeat (`supersedes`). A voter of the old group that comes back
 * (restarted, or its partition healed) must not resume the old group: its
 * log is disowned, and two of them together could still elect a leader of
 * the old configuration. So it yields to the new group — wipes its election
 * state and is added again as a fresh voter, like the loser of a merge
 * (group.ts) — and the survivor never yields to a group it replaced.
 */
export { MAX_SUPERSEDES } from '../schemas/heartbeat.ts'

export interface SupersedeView {
  group: string | null
  supersedes?: readonly string[] | undefined
  alive: boolean
}

/** The live group that replaced `ours`, if any member announces one. */
export function supersededBy (ours: string | null, others: readonly SupersedeView[]): string | null {
  if (ours === null) return null
  for (const o of others) {
    if (o.alive && o.group !== null && o.group !== ours && o.supersedes?.includes(ours) === true) return o.group
  }
  return null
}

/** Removes the members of groups we replaced from what the merge rule weighs. */
export function withoutSuperseded<T extends { group: string | null }> (others: readonly T[], supersedes: readonly string[]): T[] {
  if (supersedes.length === 0) return [...others]
  return others.filter((o) => o.group === null || !supersedes.includes(o.group))
}
