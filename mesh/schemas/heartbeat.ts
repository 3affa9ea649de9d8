/**
 * The heartbeat: every node publishes its member record on the cluster's
 * heartbeat topic every mesh.heartbeat_ms. Version 1.
 *
 * Objects are not strict: a newer node may add fields and older nodes keep
 * accepting its heartbeats (they drop what they do not know). A change that
 * alters the meaning of a field is a new version and a new topic.
 */
import { z } from 'zod'

export const HEARTBEAT_VERSION = 1

/** How many replaced group ids a voter announces (its latest forced recoveries). */
export const MAX_SUPERSEDES = 8

const ratio = z.number().min(0).max(1)
const count = z.number().int().nonnegative()

export const replicaLoadSchema = z.object({
  ready: z.boolean(),
  draining: z.boolean().default(false),
  models: z.array(z.string().max(256)).max(64),
  slots: count,
  inflight: count,
  queued: count,
  qps: z.number().nonnegative(),
  /** How fast the replica answers (bytes per ms per request); absent until measured. */
  rate: z.number().nonnegative().optional(),
  /** KV-cache use reported by the engine (vLLM gpu_cache_usage_perc), when it publishes one. */
  kv_cache: ratio.optional()
})

export const instanceSchema = z.object({
  provider: z.string().max(128),
  id: z.string().max(256),
  key: z.string().max(256).optional(),
  launched_at: count
})

export const heartbeatSchema = z.object({
  v: z.literal(HEARTBEAT_VERSION),
  cluster: z.string().max(64),
  /** The sender's peer id; must equal the gossip message's signed `from`. */
  id: z.string().max(128),
  name: z.string().max(128),
  /** Increases on every restart; with seq it orders a member's heartbeats. */
  incarnation: count,
  seq: count,
  sent_at: count,
  version: z.string().max(32),
  state: z.enum(['alive', 'draining', 'left']),
  voter: z.boolean(),
  provider: z.string().max(64),
  region: z.string().max(64),
  zone: z.string().max(64).optional(),
  spot: z.boolean(),
  cost_per_hour: z.number().nonnegative(),
  addrs: z.array(z.string().max(256)).max(32),
  /** The node's front door, host:port, for operators; traffic between members uses the mesh. */
  http: z.string().max(128).nullable(),
  load: z.object({ cpu: ratio, mem: ratio }),
  replica: replicaLoadSchema.nullable(),
  instance: instanceSchema.nullable(),
  /**
   * The provider warned that this node will be taken away (EC2 spot): a
   * rebalance recommendation (`at` = when it was noticed; the node keeps
   * serving) or an interruption notice (`at` = when it goes; the node drains).
   * Absent when there is none. The leader launches a replacement on either.
   */
  notice: z.object({
    kind: z.enum(['rebalance', 'interruption']),
    at: count
  }).optional(),
  /** The sender's view of the election, when it takes part (added by the election service). */
  election: z.object({
    /** The consensus group (Raft cluster) it belongs to; null while fresh. */
    group: z.string().max(256).nullable(),
    term: count,
    leader: z.string().max(128).nullable(),
    role: z.string().max(32),
    /** Voters in its group's configuration. */
    voters: count,
    commit: count,
    /** Groups its group replaced by a forced recovery; their members yield to it (mesh/election/supersede.ts). */
    supersedes: z.array(z.string().max(256)).max(MAX_SUPERSEDES).optional()
  }).optional()
})

export type Heartbeat = z.output<typeof heartbeatSchema>
export type ReplicaLoad = z.output<typeof replicaLoadSchema>
