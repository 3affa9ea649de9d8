/**
 * The replica supervisor: runs and watches this node's inference engine.
 *
 *   const replica = replicaSupervisor({ replica: config.replica, nodeName: config.node_name })({ log, metrics })
 *   await replica.start()            // spawns; readiness comes later ('replica:ready')
 *   replica.snapshot()               // { ready, state, reason, url, engine: { running, waiting } … }
 *   await replica.stop(graceMs)      // SIGTERM, SIGKILL after graceMs
 *
 * Check a config before starting it with replicaConfigProblems().
 */
import { ReplicaSupervisor, type ReplicaSupervisorComponents, type ReplicaSupervisorInit } from './supervisor.ts'

export { ReplicaSupervisor, defaultName } from './supervisor.ts'
export type {
  ReplicaSupervisorInit, ReplicaSupervisorComponents, ReplicaSupervisorEvents, ReplicaSnapshot,
  ReplicaState, ReplicaEngineLoad, ReplicaExit, ReplicaMetrics
} from './supervisor.ts'
export { replicaConfigProblems, planLaunch, type ReplicaConfigProblem, type Launch } from './launch.ts'
export { createReplicaMetrics } from './metrics.ts'
export { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.ts'

export function replicaSupervisor (init: ReplicaSupervisorInit): (components: ReplicaSupervisorComponents) => ReplicaSupervisor {
  return (components) => new ReplicaSupervisor(init, components)
}
