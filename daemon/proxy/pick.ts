/**
 * Which member serves a request: a pure function of the candidates' load
 * estimates, their speeds and a random source, so it is unit- and
 * property-tested.
 *
 * least_load: power of two choices (Mitzenmacher; Envoy's least_request)
 * over each candidate's expected delay (costOf): its service time, 1 / speed
 * (how fast its replica answers, measured at the member: speed.ts),
 * stretched by its load. Fast members with a free slot are used before a
 * slow one, by every entry node, the slow member's own included: ties go to
 * the faster member, and the local replica (no mesh hop) wins only when it
 * is as good and no slower. Choosing the better of two random candidates,
 * rather than the global best, keeps many entry nodes that act on the same
 * stale view from all sending their next request to the same member. A
 * member that has not measured its speed yet counts as fast as the average
 * of those that have.
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
  /** How fast its replica answers (any unit, compared only between candidates); absent: not measured yet. */
  rate?: number
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
 * A free slot, as far as this node can tell: a member admits no more than
 * its slots (slot-broker.ts), so there is no point sending it more; the rest
 * wait at the entry node for a slot offer (late binding). A small queue at
 * each replica was measured against this (bench/proxy, one replica four
 * times slower): p99 time to first token 3.7 s against 1.8 s.
 */
export function hasRoom (c: Candidate): boolean {
  return c.outstanding < c.slots
}

/** The speed to assume for each candidate: its own, or the mean of those measured (1 when none is). */
export function speeds (candidates: readonly Candidate[]): (c: Candidate) => number {
  let sum = 0
  let n = 0
  for (const c of candidates) if (c.rate !== undefined && c.rate > 0) { sum += c.rate; n++ }
  const fallback = n === 0 ? 1 : sum / n
  return (c) => (c.rate !== undefined && c.rate > 0 ? c.rate : fallback)
}

/**
 * Expected delay if this request goes to `c`. A member admits only into a
 * free slot (slot-broker.ts), so a request sent here starts at once and its
 * time is the member's service time, 1 / speed, stretched by how busy the
 * engine's batch is (more running requests decode more slowly): (1 + load) /
 * speed, load = outstanding / slots. Two equally fast members compare by
 * load; a member three times slower is used once the faster ones are full.
 */
export function costOf (c: Candidate, speed: number): number {
  return (1 + c.outstanding / Math.max(1, c.slots)) / speed
}

/** Equal expected delay: the faster, then the local one (no mesh hop), then the first drawn. */
function tieBreak (a: Candidate, b: Candidate, speed: (c: Candidate) => number): Candidate {
  const sa = speed(a)
  const sb = speed(b)
  if (sa !== sb) return sa > sb ? a : b
  return b.local ? b : a
}

export const leastLoad: RoutingPolicy = {
  name: 'least_load',
  pick (_req, candidates, random) {
    const n = candidates.length
    if (n === 0) return null
    if (n === 1) return candidates[0]!
    const speed = speeds(candidates)
    const cost = (c: Candidate): number => costOf(c, speed(c))
    const i = Math.floor(random() * n) % n
    let j = Math.floor(random() * (n - 1)) % (n - 1)
    if (j >= i) j++
    const a = candidates[i]!
    const b = candidates[j]!
    const ca = cost(a)
    const cb = cost(b)
    let winner = ca < cb ? a : cb < ca ? b : tieBreak(a, b, speed)
    // The local replica saves a mesh hop: it wins whenever it is as good, but
    // never by being slower (a slow member's own front door must not keep
    // its clients on it while faster members wait with the same expected delay).
    const local = candidates.find((c) => c.local)
    if (local !== undefined && local !== winner && cost(local) <= cost(winner) && speed(local) >= speed(winner)) winner = local
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
