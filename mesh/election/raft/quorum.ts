/**
 * Majority arithmetic, shared by vote counting, commit and the lease, so all
 * three agree on what "a majority of the voters" is.
 */

export function majority (voters: number): number {
  return Math.floor(voters / 2) + 1
}

/**
 * The largest value v such that a majority of the voters report ≥ v, given
 * one value per voter (a missing voter counts as `missing`). Used for the
 * commit index (values are match indexes) and the lease (acknowledged rounds).
 */
export function quorumValue (voters: readonly string[], valueOf: (id: string) => number | undefined, missing = 0): number {
  if (voters.length === 0) return missing
  const values = voters.map(v => valueOf(v) ?? missing).sort((a, b) => b - a)
  return values[majority(voters.length) - 1] ?? missing
}

/** How many of `voters` satisfy `pred`, and whether that is a majority. */
export function countVotes (voters: readonly string[], pred: (id: string) => boolean): { count: number, won: boolean } {
  let count = 0
  for (const v of voters) if (pred(v)) count++
  return { count, won: voters.length > 0 && count >= majority(voters.length) }
}
