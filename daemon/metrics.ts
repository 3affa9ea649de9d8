/**
 * Prometheus metrics (prom-client), served on GET /metrics. One registry per
 * daemon (not prom-client's global one), so several daemons in one test
 * process never share counters. Names follow Prometheus conventions:
 * `meshd_` prefix, `_total` for counters only, base units (seconds, bytes).
 * The process and Node.js series are prom-client's standard ones, unprefixed
 * (`process_cpu_seconds_total`, `nodejs_heap_size_used_bytes` …), so stock
 * Node.js dashboards work as they are.
 *
 * No label takes unbounded values: no peer ids, no request ids, no free
 * text. Members are labelled by their node name; a model label only ever
 * holds a model some member serves (anything else is `other`).
 * docs/metrics.md lists every series (test/metrics/docs.test.ts keeps it true).
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'
import type { Member } from '../mesh/membership/table.ts'

export type Metrics = ReturnType<typeof createMetrics>

export interface MetricsInit {
  /** http.request_timeout: the request histograms' last bucket reaches it. */
  requestTimeoutMs: number
}

export function createMetrics (init: MetricsInit) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const r = [registry]
  const buckets = histogramBuckets(init.requestTimeoutMs / 1000)
  return {
    registry,
    members: new Gauge({ name: 'meshd_members', help: 'Members of the mesh as this node sees them, by state', labelNames: ['state'] as const, registers: r }),
    heartbeatsSent: new Counter({ name: 'meshd_heartbeats_sent_total', help: 'Heartbeats this node published', registers: r }),
    heartbeatsReceived: new Counter({ name: 'meshd_heartbeats_received_total', help: 'Heartbeats received from other members (new ones, after de-duplication)', registers: r }),
    heartbeatBytes: new Counter({ name: 'meshd_heartbeat_bytes_sent_total', help: 'Bytes of heartbeat payload this node published', registers: r }),
    gossipRejected: new Counter({ name: 'meshd_gossip_rejected_total', help: 'Gossip messages rejected by a topic validator', labelNames: ['topic', 'reason'] as const, registers: r }),
    memberTransitions: new Counter({ name: 'meshd_member_transitions_total', help: 'Member state changes seen by this node', labelNames: ['to'] as const, registers: r }),
    peersConnected: new Gauge({ name: 'meshd_peers_connected', help: 'Peers with an open libp2p connection', registers: r }),
    peersRefused: refusedCounter(r),
    dials: new Counter({ name: 'meshd_dials_total', help: 'Dials to known members', labelNames: ['result'] as const, registers: r }),
    dialAddresses: new Counter({ name: 'meshd_dial_addresses_total', help: 'Addresses the dialer may try (each one TCP connect): what its rate limit counts', registers: r }),
    bookEntries: new Gauge({ name: 'meshd_discovery_targets', help: 'Targets the dialer remembers, by source (join, bootstrap, member, remembered, hint)', labelNames: ['source'] as const, registers: r }),
    requests: new Counter({ name: 'meshd_http_requests_total', help: 'HTTP requests answered by this node, by route, HTTP status (499: the client went away before the answer began) and model', labelNames: ['route', 'code', 'model'] as const, registers: r }),
    streamErrors: new Counter({ name: 'meshd_http_stream_errors_total', help: 'Answers that broke off after their status was sent (the serving member failed mid-stream), by model', labelNames: ['model'] as const, registers: r }),
    ttft: new Histogram({ name: 'meshd_request_ttft_seconds', help: 'Time from request arrival to the first byte of the answer (for a streamed completion: the first token), by model', labelNames: ['model'] as const, buckets, registers: r }),
    latency: new Histogram({ name: 'meshd_request_duration_seconds', help: 'Time from request arrival to the last byte of the answer, by model', labelNames: ['model'] as const, buckets, registers: r }),
    retries: new Counter({ name: 'meshd_request_retries_total', help: 'Requests retried on another member before any byte reached the client', labelNames: ['reason'] as const, registers: r }),
    rejected: new Counter({ name: 'meshd_requests_rejected_total', help: 'Requests answered with an error by the front door, by reason', labelNames: ['reason'] as const, registers: r }),
    inflight: new Gauge({ name: 'meshd_requests_inflight', help: 'Requests this front door is relaying now', registers: r }),
    queueLength: new Gauge({ name: 'meshd_entry_queue_length', help: 'Requests waiting at this entry node for a member with room', registers: r }),
    replicaInflight: new Gauge({ name: 'meshd_replica_inflight', help: 'Requests at the local replica (from any entry node)', registers: r }),
    spotNotices: noticeCounter(r)
  }
}

/** Seconds: from 1 ms to a minute, then coarser steps until one reaches `maxSeconds`. */
const BASE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const LONG_BUCKETS = [120, 300, 600, 1200, 1800, 3600]

/**
 * Histogram buckets for request times: a request may last up to
 * http.request_timeout, so the last finite bucket is at least that (else
 * every long answer lands in +Inf and quantiles above it read as the last
 * bucket's bound).
 */
export function histogramBuckets (maxSeconds: number): number[] {
  const out = [...BASE_BUCKETS]
  for (const b of LONG_BUCKETS) {
    if (out[out.length - 1]! >= maxSeconds) break
    out.push(b)
  }
  if (out[out.length - 1]! < maxSeconds) out.push(maxSeconds)
  return out
}

/**
 * Load per member as this node's member table shows it (from heartbeats), by
 * node name: an operator sees every member's load from any one scraped node,
 * burst nodes included, which Prometheus may not scrape at all. Series of a
 * member that is gone disappear with it.
 */
export function registerMemberLoad (registry: Registry, members: () => readonly Member[]): void {
  const r = [registry]
  const perMember = (name: string, help: string, pick: (l: NonNullable<Member['heartbeat']['replica']>) => number): Gauge<'member'> =>
    new Gauge({
      name,
      help,
      labelNames: ['member'] as const,
      registers: r,
      collect () {
        this.reset()
        for (const [member, v] of memberLoad(members(), pick)) this.set({ member }, v)
      }
    })
  perMember('meshd_member_inflight', 'Requests in progress at each alive member\'s replica, by member name (from its heartbeats)', (l) => l.inflight)
  perMember('meshd_member_queued', 'Requests waiting at each alive member\'s replica, by member name (from its heartbeats)', (l) => l.queued)
  perMember('meshd_member_slots', 'Concurrent requests each alive member\'s replica takes, by member name (from its heartbeats)', (l) => l.slots)
}

/** Alive members with a replica → value by name (two members under one name add up rather than hide each other). */
export function memberLoad (members: readonly Member[], pick: (l: NonNullable<Member['heartbeat']['replica']>) => number): Map<string, number> {
  const out = new Map<string, number>()
  for (const m of members) {
    const l = m.heartbeat.replica
    if (m.state !== 'alive' || l === null) continue
    out.set(m.heartbeat.name, (out.get(m.heartbeat.name) ?? 0) + pick(l))
  }
  return out
}

/**
 * Connections refused, by `reason`: `swarm_key` (the peer holds another swarm
 * key: the private network handshake failed) or `cluster` (same key, another
 * cluster). Both series exist from the start, at 0, so a dashboard or an alert
 * sees the first refusal as an increase.
 */
export const REFUSAL_REASONS = ['swarm_key', 'cluster'] as const

function refusedCounter (registers: Registry[]): Counter<'reason'> {
  const c = new Counter({ name: 'meshd_peers_refused_total', help: 'Connections refused: the peer holds another swarm key (reason swarm_key) or is of another cluster (reason cluster)', labelNames: ['reason'] as const, registers })
  for (const reason of REFUSAL_REASONS) c.inc({ reason }, 0)
  return c
}

/**
 * Notices EC2 gave this burst node (instance.notices: ec2), each counted once:
 * `interruption` (it goes at the notice's time) or `rebalance` (a
 * recommendation). Both series exist from the start, at 0.
 */
function noticeCounter (registers: Registry[]): Counter<'kind'> {
  const c = new Counter({ name: 'meshd_spot_notices_total', help: 'Spot notices this node read from the instance metadata (instance.notices: ec2), by kind: interruption, rebalance', labelNames: ['kind'] as const, registers })
  for (const kind of ['interruption', 'rebalance']) c.inc({ kind }, 0)
  return c
}

export { Counter, Gauge, Histogram }
