/**
 * When a burst node retires itself, as a pure function: its ttl passed, it
 * was idle for idle_timeout, or it has heard from no voter for
 * lost_mesh_grace (a dead leader or a partition must not leave it running,
 * and billing, forever). The leader terminates such nodes too; this is the
 * backstop that needs no leader.
 */
export interface RetireInput {
  now: number
  launchedAt: number
  /** Last time a request started or finished here (or the start, if none yet). */
  lastActivityAt: number
  /** Last time any voter was alive in this node's member table. */
  lastVoterSeenAt: number
  ttlMs: number
  idleTimeoutMs: number
  lostMeshGraceMs: number
  /** Requests in flight now: an idle timer never fires under a running request. */
  busy: number
}

export function retireReason (r: RetireInput): string | null {
  if (r.ttlMs > 0 && r.now - r.launchedAt >= r.ttlMs) return `ttl ${Math.round(r.ttlMs / 1000)} s passed`
  if (r.lostMeshGraceMs > 0 && r.now - r.lastVoterSeenAt >= r.lostMeshGraceMs) return `no voter heard for ${Math.round((r.now - r.lastVoterSeenAt) / 1000)} s (lost_mesh_grace ${Math.round(r.lostMeshGraceMs / 1000)} s)`
  if (r.idleTimeoutMs > 0 && r.busy === 0 && r.now - r.lastActivityAt >= r.idleTimeoutMs) return `idle for ${Math.round((r.now - r.lastActivityAt) / 1000)} s (idle_timeout ${Math.round(r.idleTimeoutMs / 1000)} s)`
  return null
}
