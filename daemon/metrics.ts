/**
 * Prometheus metrics (prom-client), served on GET /metrics. One registry per
 * daemon (not prom-client's global one), so several daemons in one test
 * process never share counters. Names follow Prometheus conventions:
 * `meshd_` prefix, `_total` for counters, base units (seconds, bytes).
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'

export type Metrics = ReturnType<typeof createMetrics>

export function createMetrics () {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'meshd_process_' })
  const r = [registry]
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
    requests: new Counter({ name: 'meshd_http_requests_total', help: 'Requests answered by this node\'s front door, by route and status', labelNames: ['route', 'code'] as const, registers: r }),
    ttfb: new Histogram({ name: 'meshd_request_ttfb_seconds', help: 'Time from request arrival to the first response byte, by serving member and model', labelNames: ['served_by', 'model'] as const, buckets: histogramBuckets(), registers: r }),
    latency: new Histogram({ name: 'meshd_request_duration_seconds', help: 'Time from request arrival to the last response byte, by serving member and model', labelNames: ['served_by', 'model'] as const, buckets: histogramBuckets(), registers: r }),
    retries: new Counter({ name: 'meshd_request_retries_total', help: 'Requests retried on another member before any byte reached the client', labelNames: ['reason'] as const, registers: r }),
    rejected: new Counter({ name: 'meshd_requests_rejected_total', help: 'Requests answered with an error by the front door', labelNames: ['reason'] as const, registers: r }),
    inflight: new Gauge({ name: 'meshd_requests_inflight', help: 'Requests this front door is relaying now', registers: r }),
    queueLength: new Gauge({ name: 'meshd_entry_queue_length', help: 'Requests waiting at this entry node for a member with room', registers: r }),
    replicaInflight: new Gauge({ name: 'meshd_replica_inflight', help: 'Requests at the local replica (from any entry node)', registers: r })
  }
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

export function histogramBuckets (): number[] {
  return [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
}

export { Counter, Gauge, Histogram }
