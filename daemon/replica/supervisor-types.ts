/**
 * The replica supervisor's public shapes: its states, what snapshot() and
 * its events report, and what it is built from. The behaviour is in
 * supervisor.ts.
 */
import type { Logger } from 'pino'
import type { ReplicaConfig } from '../config/schema.ts'
import type { BackoffPolicy } from './backoff.ts'
import type { OutputLimits } from './output.ts'
import type { ExitInfo } from './process.ts'

export type ReplicaState = 'starting' | 'ready' | 'unready' | 'restarting' | 'stopping' | 'stopped' | 'failed'

export interface ReplicaEngineLoad {
  /** Which engine's metric names were read: `llama.cpp`, `vllm`, `sglang`, `tgi`. */
  source: string
  /** Requests the engine is running now. */
  running: number
  /** Requests waiting in the engine's own queue. */
  waiting: number
  /** KV-cache use 0..1, when the engine publishes it. */
  kvCache?: number
  /** When it was read (the supervisor's clock, ms). */
  at: number
}

export interface ReplicaSnapshot {
  /** Passed its last readiness probe and is not stopping: may take traffic. */
  ready: boolean
  state: ReplicaState
  /** Why it is not ready ('ready' when it is), for status and /health. */
  reason: string
  /** Base URL of the engine, e.g. http://127.0.0.1:41234; null while it is not running. */
  url: string | null
  models: string[]
  slots: number
  /** From the engine's own /metrics, when it publishes them; null otherwise. */
  engine: ReplicaEngineLoad | null
  /** Times the engine was started again after an exit or a failed probe. */
  restarts: number
  /** The engine's process (its process group id too); null when none runs. */
  pid: number | null
  /** The last exit of the engine, expected or not. */
  lastExit: (ExitInfo & { at: number }) | null
}

export interface ReplicaExit {
  code: number | null
  signal: NodeJS.Signals | null
  /** What happened, in words. */
  reason: string
  /** When it will be started again; null when the supervisor gave up (state `failed`). */
  restartInMs: number | null
}

export interface ReplicaSupervisorEvents {
  /** Passed a probe after not being ready. */
  'replica:ready': []
  /** Was ready and no longer is (failed probe, exit, stopping); the reason. */
  'replica:unready': [string]
  /** The engine exited without stop() asking it to (a crash, or a kill for failing its probes). */
  'replica:exit': [ReplicaExit]
}

export interface ReplicaSupervisorInit {
  replica: ReplicaConfig
  nodeName: string
  /** @default Date.now */
  now?: () => number
  /** `replica` field of log lines. @default "sim", the command's program name, or the URL's host:port */
  name?: string
  /** Extra simulator flags (`--ready-after-ms 500`, `--decode-slowdown 0.1` …), for tests, demos and benchmarks. */
  simArgs?: string[]
  /** Added to the daemon's environment for the engine. */
  env?: Record<string, string | undefined>
  cwd?: string
  /** @default DEFAULT_BACKOFF: 1 s doubling to 60 s, reset after 60 s ready */
  backoff?: Partial<BackoffPolicy>
  /** Probe interval until the first pass of a run (capped by period_seconds). @default 1000 */
  startingPeriodMs?: number
  /** A run that passed and then fails its probe for this long is restarted (SkyServe: 180 s). @default 180_000 */
  failureThresholdMs?: number
  /** @default 1000 */
  metricsIntervalMs?: number
  /** Scrape interval while the engine publishes no known load metrics. @default 15_000 */
  metricsIdleIntervalMs?: number
  /** @default min(5000, readiness_probe.timeout_seconds) */
  metricsTimeoutMs?: number
  /** stop()'s default grace before SIGKILL. @default 30_000 */
  stopGraceMs?: number
  /** Grace before SIGKILL when the supervisor kills a run to restart it. @default 10_000 */
  restartGraceMs?: number
  output?: Partial<OutputLimits>
}

/** Counters and gauges the supervisor bumps (prom-client's shapes; see metrics.ts). */
export interface ReplicaMetrics {
  restarts?: { inc: (n?: number) => void }
  probes?: { inc: (labels: { result: string }) => void }
  exits?: { inc: (n?: number) => void }
  outputDropped?: { inc: (n?: number) => void }
  ready?: { set: (v: number) => void }
}

export interface ReplicaSupervisorComponents {
  log: Logger
  metrics?: ReplicaMetrics
}
