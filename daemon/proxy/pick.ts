/**
 * Which member serves a request: a pure function of the candidates' load
 * estimates and a random source, so it is unit- and property-tested.
 *
 * least_load: power of two choices (Mitzenmacher; Envoy's least_request).
 * Choosing the lower-loaded of two random candidates, rather than the global
 * minimum, keeps many entry nodes that act on the same stale view from all
 * sending their next request to the same member, while still steering load
 * away from busy and slow members. Ties go to the local replica (no mesh hop).
 *
 * A policy only sees candidates that are alive, ready, not draining, serve the
 * model and have room; a prefix-affinity policy (send requests sharing a
 * prompt prefix to the member likely to hold its KV cache, within a load
 * bound) fits in as one more entry of POLICIES.
 */

export interface Candidate {
  id: string
  local: boolean
  /** Estimated requests in flight and queued at that replica. */
  outstanding: number
  slots: number
}

export interface RouteRequest {
  model: string
  /** A hash of the prompt's first tokens, for affinity policies. */
  prefixKey?: string
}

export interface RoutingPolicy {
  readonly name: string
  pick: (req: RouteRequest, candidates: readonly Candidate[], random: () => number) => Candidate | null
}

/**
 * How far past its slots a member may be loaded before it counts as
 * saturated. 0: a request is sent only to a member with a free slot; the rest
 * wait at the entry node and go to whichever member frees a slot first (late
 * binding). bench/proxy measured this against 0.5 (a little queue at each
 * replica, which saves the refill round trip): with one replica four times
 * slower, p99 time to first token 1.8 s against 3.7 s (nginx least_conn
 * 3.2 s), for ~4% fewer requests completed.
 */
export const QUEUE_ALLOWANCE = 0

export function loadOf (c: Candidate): number {
  return c.outstanding / Math.max(1, c.slots)
}

export function hasRoom (c: Candidate): boolean {
  return c.outstanding < c.slots * (1 + QUEUE_ALLOWANCE)
}

export const leastLoad: RoutingPolicy = {
  name: 'least_load',
  pick (_req, candidates, random) {
    const n = candidates.length
    if (n === 0) return null
    if (n === 1) return candidates[0]!
    const i = Math.floor(random() * n) % n
    let j = Math.floor(random() * (n - 1)) % (n - 1)
    if (j >= i) j++
    const a = candidates[i]!
    const b = candidates[j]!
    const la = loadOf(a)
    const lb = loadOf(b)
    let winner = la < lb ? a : lb < la ? b : (b.local ? b : a)
    const local = candidates.find((c) => c.local)
    if (local !== undefined && local !== winner && loadOf(local) <= loadOf(winner)) winner = local
    return winner
  }
}

export const POLICIES: Readonly<Record<string, RoutingPolicy>> = { least_load: leastLoad }

/**
 * Picks among the candidates that have room, leaving out those already
 * tried for this request. Null when none has room (the caller queues) or
 * none is left.
 */
export function pick (policy: RoutingPolicy, req: RouteRequest, candidates: readonly Candidate[], random: () => number, exclude?: ReadonlySet<string>): Candidate | null {
  const open = candidates.filter((c) => hasRoom(c) && (exclude === undefined || !exclude.has(c.id)))
  return policy.pick(req, open, random)
}
