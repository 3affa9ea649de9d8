/**
 * Limits of what discovery remembers and how hard it dials. Everything a
 * peer can make this node remember or dial is capped here, so that a member
 * holding the swarm key cannot turn the others into port scanners (issue 12
 * item 6: one address book of 4,096 made-up members once led to ~16 dials a
 * second, forever). Each value says what it trades off.
 */
import type { BackoffCurve } from '../backoff.ts'

/**
 * Addresses kept per peer. A node lists one per interface it listens on
 * (typically 1–4); libp2p is told the same cap (mesh/node.ts), so a dial
 * tries at most this many addresses.
 */
export const MAX_ADDRS_PER_PEER = 8

/**
 * Peers remembered for dialling: members (from their own signed
 * heartbeats), peers remembered from a previous run, and hints, together.
 * Also how many rows the peer cache in SQLite keeps. A mesh larger than this
 * still works (members dial each other), this node just does not dial the rest.
 */
export const MAX_PEERS = 1024

/**
 * Hints: members named by another member's address book (the sync protocol)
 * and not yet heard. A third party's claim, so only a few are kept, each
 * briefly and for few tries: within a heartbeat the member's own signed
 * heartbeat arrives through gossip and replaces the hint.
 */
export const MAX_HINTS = 64
export const HINT_TTL_MS = 2 * 60_000
export const HINT_MAX_FAILURES = 2
/** A hint given up is not taken again from the next book for this long (capped like the hints themselves). */
export const HINT_TOMBSTONE_MS = 10 * 60_000
export const MAX_TOMBSTONES = MAX_PEERS

/**
 * A peer remembered from a previous run is given up after this many failed
 * dials in a row (~4 min of trying on the curve below) — the mesh it belonged
 * to dials this node too when it is back — and is not loaded at all when it
 * was last seen longer ago than REMEMBERED_TTL_MS.
 */
export const REMEMBERED_MAX_FAILURES = 12
export const REMEMBERED_TTL_MS = 7 * 24 * 3_600_000

/**
 * Dial budget, in addresses tried (each is one TCP connect): a bucket of
 * DIAL_BURST refilled at DIAL_RATE_PER_S. It bounds what any input can make
 * this node dial. A restarted node with many remembered peers reaches them
 * within seconds anyway, as the first one it reaches gossips the node's
 * heartbeat and every member dials it back.
 */
export const DIAL_RATE_PER_S = 4
export const DIAL_BURST = 32
/** Hints spend from their own, smaller budget too (and from the shared one). */
export const HINT_DIAL_RATE_PER_S = 0.5
export const HINT_DIAL_BURST = 8

/** Dials in flight at once. */
export const MAX_PARALLEL_DIALS = 8

/**
 * Back-off per kind of target, on the one curve of mesh/backoff.ts. Members
 * keep the 30 s cap that redials a restarted member soon; join and bootstrap
 * addresses (the operator's, never given up: `meshd join --forget` removes
 * one) back off to a minute.
 */
export const CURVES = {
  join: { initialMs: 500, maxMs: 60_000, jitter: 0.25 },
  bootstrap: { initialMs: 500, maxMs: 60_000, jitter: 0.25 },
  member: { initialMs: 500, maxMs: 30_000, jitter: 0.25 },
  remembered: { initialMs: 500, maxMs: 30_000, jitter: 0.25 },
  hint: { initialMs: 1000, maxMs: 10_000, jitter: 0.25 }
} as const satisfies Record<string, BackoffCurve>
