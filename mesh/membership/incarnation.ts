/**
 * The incarnation a node starts a run with. Heartbeats are ordered by
 * (incarnation, seq) and every member drops what is not newer than what it
 * holds (table.ts), so a restarted node must start above every incarnation
 * its earlier runs used, or the mesh treats its heartbeats as stale and
 * lists it dead (it gets no traffic) until the old record is forgotten.
 *
 * A counter kept in the database alone does not guarantee that: a node whose
 * database was lost or emptied starts again at 1, below what its peers saw.
 * So the wall clock is a floor that survives the database: every run starts
 * at least at the time it started (ms since the epoch), and one above the
 * stored value when the clock went backwards. As long as the clock does not
 * go back by more than the time between two starts, a node that lost its
 * database still outranks its earlier runs; and a node that kept it always
 * does (stored + 1), whatever the clock says.
 *
 * The heartbeat's `incarnation` is a non-negative integer (schemas/heartbeat.ts):
 * milliseconds since 1970 stay far below 2^53.
 */
export function nextIncarnation (stored: number | undefined, nowMs: number): number {
  const after = stored !== undefined && Number.isSafeInteger(stored) && stored >= 0 ? stored + 1 : 1
  return Math.max(after, Math.floor(nowMs))
}
