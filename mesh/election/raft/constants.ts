/**
 * Election and lease timing defaults, each with the trade-off it makes.
 * Every node of a cluster must run the same values: the lease proof
 * (lease.ts) relies on followers keeping their promise for at least the
 * electionTimeoutMinMs the leader assumes.
 *
 * The product requirement these serve: after a leader is killed or hangs,
 * the survivors agree on a new acting leader within ~3 s, and a node that is
 * merely busy (event loop late by a few hundred ms) causes no election.
 */

/**
 * How often a leader sends a round of appends (heartbeats) when idle.
 * Lower detects less and costs more traffic; it must stay well below the
 * lease (timing.ts checks heartbeat < lease) so two rounds fit in a lease and
 * one lost heartbeat does not interrupt the leader's right to act.
 */
export const DEFAULT_HEARTBEAT_MS = 500

/**
 * A follower that hears nothing from its leader for a random time in
 * [min, max) starts a pre-vote. min is 3 heartbeats: a leader can miss two in a
 * row, or be late by ~1 s because it is busy, without anyone campaigning.
 * It is also the length of a follower's promise not to vote after hearing
 * from a leader, so it bounds the lease: a larger min is a longer lease but a
 * slower failover. Failover ≈ min + (the first of N uniform draws from the
 * spread) + two round trips, i.e. 1.5–2.3 s plus up to one heartbeat of
 * staleness: under the 3 s target.
 */
export const DEFAULT_ELECTION_TIMEOUT_MIN_MS = 1500

/**
 * The spread (max − min = 750 ms, half of min) makes split votes rare: the
 * first node to time out is usually alone by more than a round trip. A wider
 * spread means fewer split votes but a slower worst case.
 */
export const DEFAULT_ELECTION_TIMEOUT_MAX_MS = 2250

/**
 * ρ: the most a node's local (monotonic) clock may run fast or slow relative
 * to real time, as a rate. Commodity quartz drifts by ~1e-4; 0.05 is 500×
 * that and also absorbs VM clock-rate hiccups. It only shortens the lease
 * (by the factor (1−ρ)/(1+ρ) ≈ 0.905), so being generous is cheap.
 */
export const DEFAULT_MAX_DRIFT_RATE = 0.05

/**
 * Taken off the lease on top of the drift factor: covers the time between a
 * shell asking isActingLeader(now) and its action taking effect, and
 * rounding. 50 ms of a ~1.36 s lease.
 */
export const DEFAULT_LEASE_SAFETY_MARGIN_MS = 50

/**
 * The most entries one append carries. The ledger is low-rate (a few
 * decisions a minute), so this only matters for a node catching up from an
 * empty log; it keeps one message well under the shell's frame limit.
 */
export const MAX_ENTRIES_PER_APPEND = 64

/** Version of the wire messages (messages.ts); bump on any change of meaning. */
export const ELECTION_SCHEMA_VERSION = 1

/** Node ids are libp2p peer ids in production; this bounds what we accept. */
export const MAX_NODE_ID_LENGTH = 128

/** The most voters a config may list; a mesh has a handful of voters. */
export const MAX_VOTERS = 64
