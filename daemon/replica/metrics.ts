/**
 * The supervisor's Prometheus metrics, registered on the daemon's registry
 * (daemon/metrics.ts): `createReplicaMetrics(metrics.registry)` and hand the
 * result to the supervisor as `components.metrics`.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { ReplicaMetrics } from './supervisor.ts'

export function createReplicaMetrics (registry: Registry): Required<ReplicaMetrics> {
  const registers = [registry]
  return {
    restarts: new Counter({ name: 'meshd_replica_restarts_total', help: 'Times the local engine was started again after an exit or a failed probe', registers }),
    exits: new Counter({ name: 'meshd_replica_exits_total', help: 'Exits of the local engine process, expected or not', registers }),
    probes: new Counter({ name: 'meshd_replica_probes_total', help: 'Readiness probes of the local engine, by result', labelNames: ['result'] as const, registers }),
    outputDropped: new Counter({ name: 'meshd_replica_output_lines_dropped_total', help: 'Lines of the engine\'s output not logged because of the rate limit', registers }),
    ready: new Gauge({ name: 'meshd_replica_ready', help: '1 while the local engine passes its readiness probe', registers })
  }
}
