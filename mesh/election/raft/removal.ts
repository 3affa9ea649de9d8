/**
 * Whether a removal can commit before it is proposed. A config is in force
 * as soon as it is appended (single-server changes, thesis §4.1), so a
 * removal whose new voter set has no live majority does not just fail: it
 * leaves the group unable to elect anyone until those voters return (the
 * leader itself steps down once the new majority stops answering). A leaving
 * leader is the usual case: in {A, B, C} with C dead, A removing itself
 * leaves {B, C}, whose majority is both. So the leader checks first and
 * refuses, naming the voters it would need.
 */
import { countVotes, majority } from './quorum.ts'

export type RemovalCheck =
  | { ok: true }
  /** `missing`: voters of the new set that have not answered recently; `need` of `of` must. */
  | { ok: false, missing: string[], need: number, of: number }

/**
 * Would a config of `voters` without `remove` have a live majority? `self`
 * (the leader) counts as live when it stays; `live(v)` says whether another
 * voter answered recently.
 */
export function removalQuorum (voters: readonly string[], remove: string, self: string, live: (id: string) => boolean): RemovalCheck {
  const next = voters.filter((v) => v !== remove)
  const isLive = (v: string): boolean => v === self || live(v)
  if (next.length > 0 && countVotes(next, isLive).won) return { ok: true }
  return { ok: false, missing: next.filter((v) => !isLive(v)), need: majority(next.length), of: next.length }
}
