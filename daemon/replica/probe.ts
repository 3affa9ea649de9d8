/**
 * The readiness probe's rules, as SkyServe applies them
 * (sky/serve/replica_managers.py, `_probe_all_replicas` and `ReplicaInfo.probe`),
 * as a pure step function: state + one probe's outcome + the time → the new
 * state, whether the replica takes traffic, why not, whether the run should be
 * replaced, and when to probe next. The HTTP request is in probe-http.ts.
 *
 * What SkyServe does (and what we keep):
 * - It probes a replica from the moment its launch finished, every probe
 *   interval, whatever `initial_delay_seconds` says; the first 200 makes it
 *   READY at once. `initial_delay_seconds` is not a wait before the first
 *   probe but the time a replica is allowed to fail its probe before it has
 *   ever passed: within it a failure is normal (STARTING), beyond it the
 *   replica is torn down (FAILED_INITIAL_DELAY).
 * - Once a replica has passed, a single failed probe takes it out of the
 *   ready set (NOT_READY: `ready_replica_urls` only lists READY), and a pass
 *   puts it back. Failing without a pass for 180 s
 *   (`_CONSECUTIVE_FAILURE_THRESHOLD_TIMEOUT`, measured from the first failure
 *   of the streak to the latest) tears it down (FAILED_PROBING).
 * - GET `path`, or POST `post_data` as a JSON body when it is given, each with
 *   `timeout_seconds`; a timeout or connection error is a failure.
 *
 * Where we differ, and why:
 * - Any 2xx passes (SkyServe: exactly 200). A `/health` answering 204 is
 *   healthy to every load balancer and to Kubernetes.
 * - The interval is `period_seconds` (SkyServe: a fixed 10 s,
 *   `endpoint_probe_interval_seconds` in newer versions), and while the
 *   replica has not passed yet we probe every `startingPeriodMs`
 *   (min(period, 1 s)): a local engine that is up in 2 s takes traffic at
 *   2 s, not at the next 5 s tick. Probes never overlap.
 * - The initial delay counts from the start of the process (SkyServe: from
 *   its first failed probe, which comes right after the launch anyway).
 * - A run is torn down for never passing only once the engine has had a
 *   chance to answer: at least `minFailedProbes` (3) probes reached it and
 *   failed, whatever the initial delay. Our first probe comes at the instant
 *   of the spawn, when no engine can answer; with `initial_delay_seconds: 0`
 *   that probe alone killed every run, forever. A probe that did not reach
 *   the engine (the simulator has not reported its port yet) counts only
 *   past max(initial delay, `portWaitMs`): an engine that never says where
 *   it listens is still replaced, but not before it could have said so.
 * - "Torn down" becomes "killed and started again with back-off" for an
 *   engine meshd runs; for one managed elsewhere (`url` only) we cannot
 *   restart it, so it stays not ready, probed every period, until it passes.
 *
 * | before                  | probe | condition                              | after    | ready | restart | next probe      |
 * | ----------------------- | ----- | -------------------------------------- | -------- | ----- | ------- | --------------- |
 * | any                     | pass  |                                        | ready    | yes   | no      | period          |
 * | never passed this run   | fail  | since start < initial delay            | starting | no    | no      | startingPeriod  |
 * | never passed this run   | fail  | ≥ initial delay, < 3 probes reached it | starting | no    | no      | startingPeriod  |
 * | never passed this run   | fail  | ≥ initial delay, ≥ 3 probes reached it | unready  | no    | yes     | period          |
 * | never passed this run   | none  | waiting for its port < max(delay, 60 s)| starting | no    | no      | startingPeriod  |
 * | never passed this run   | none  | waiting for its port ≥ max(delay, 60 s)| unready  | no    | yes     | period          |
 * | passed before this run  | fail  | failing for < failure threshold        | unready  | no    | no      | period          |
 * | passed before this run  | fail  | failing for ≥ failure threshold        | unready  | no    | yes     | period          |
 *
 * "This run" is one process of the engine: after a restart the replica has to
 * pass again, within a fresh initial delay.
 */
import type { ReplicaConfig } from '../config/schema.ts'

export interface ProbeRules {
  path: string
  /** A JSON body makes the probe a POST; null: GET. */
  postData: unknown
  initialDelayMs: number
  periodMs: number
  timeoutMs: number
  /** Probe interval until the first pass of a run. */
  startingPeriodMs: number
  /** Failing this long after having passed: restart. Infinity: never. */
  failureThresholdMs: number
  /** Probes that reached the engine and failed before a run that never passed is torn down, at least. */
  minFailedProbes: number
  /** How long an engine may take to report its port (beyond the initial delay if that is longer). */
  portWaitMs: number
}

/** SkyServe's `_CONSECUTIVE_FAILURE_THRESHOLD_TIMEOUT`. */
export const FAILURE_THRESHOLD_MS = 180_000
/** Probe interval while starting, at most. */
export const STARTING_PERIOD_MS = 1000
/** A run is never torn down before this many probes reached its engine and failed. */
export const MIN_FAILED_PROBES = 3
/** The longest wait for an engine to report its port, unless the initial delay is longer. */
export const PORT_WAIT_MS = 60_000

export function probeRules (probe: ReplicaConfig['readiness_probe'], over: { startingPeriodMs?: number, failureThresholdMs?: number, minFailedProbes?: number, portWaitMs?: number } = {}): ProbeRules {
  const periodMs = probe.period_seconds * 1000
  return {
    path: probe.path,
    postData: probe.post_data ?? null,
    initialDelayMs: probe.initial_delay_seconds * 1000,
    periodMs,
    timeoutMs: probe.timeout_seconds * 1000,
    startingPeriodMs: Math.min(periodMs, over.startingPeriodMs ?? STARTING_PERIOD_MS),
    failureThresholdMs: over.failureThresholdMs ?? FAILURE_THRESHOLD_MS,
    minFailedProbes: over.minFailedProbes ?? MIN_FAILED_PROBES,
    portWaitMs: over.portWaitMs ?? PORT_WAIT_MS
  }
}

/** `reached: false`: no probe was sent, the engine cannot be probed yet (it has not reported its port). */
export type ProbeOutcome = { ok: true } | { ok: false, detail: string, reached?: boolean }

export interface ProbeState {
  /** When this run began (the process was started; for a server managed elsewhere, when probing began). */
  since: number
  /** The first pass of this run. */
  passedAt: number | null
  ready: boolean
  /** The first failure of the current streak, once the run has passed. */
  failingSince: number | null
  /** Probes that reached the engine and failed, before the first pass of this run. */
  failedProbes: number
}

export type ProbePhase = 'starting' | 'ready' | 'unready'

export interface ProbeStep {
  state: ProbeState
  phase: ProbePhase
  ready: boolean
  /** Why it is not ready ('ready' when it is). */
  reason: string
  /** Set when the run should be replaced: the reason. */
  restart: string | null
  /** Delay from this probe's start to the next one's. */
  nextInMs: number
}

export function initialProbeState (at: number): ProbeState {
  return { since: at, passedAt: null, ready: false, failingSince: null, failedProbes: 0 }
}

export function probeStep (rules: ProbeRules, s: ProbeState, outcome: ProbeOutcome, at: number): ProbeStep {
  if (outcome.ok) {
    return {
      state: { ...s, passedAt: s.passedAt ?? at, ready: true, failingSince: null },
      phase: 'ready',
      ready: true,
      reason: 'ready',
      restart: null,
      nextInMs: rules.periodMs
    }
  }
  if (s.passedAt === null) {
    const waited = at - s.since
    const reached = outcome.reached !== false
    const state: ProbeState = { ...s, ready: false, failedProbes: s.failedProbes + (reached ? 1 : 0) }
    const starting = (why: string): ProbeStep => ({ state, phase: 'starting', ready: false, reason: `starting (${why}): ${outcome.detail}`, restart: null, nextInMs: rules.startingPeriodMs })
    if (waited < rules.initialDelayMs) return starting(`${secs(waited)} of initial_delay_seconds ${secs(rules.initialDelayMs)}`)
    if (!reached) {
      const limit = Math.max(rules.initialDelayMs, rules.portWaitMs)
      if (waited < limit) return starting(`${secs(waited)} of ${secs(limit)} for the engine to report its port`)
      const reason = `not ready within ${secs(limit)}: ${outcome.detail}`
      return { state, phase: 'unready', ready: false, reason, restart: reason, nextInMs: rules.periodMs }
    }
    if (state.failedProbes < rules.minFailedProbes) return starting(`probe ${state.failedProbes} of at least ${rules.minFailedProbes} before a restart`)
    const reason = `not ready within initial_delay_seconds ${secs(rules.initialDelayMs)}: ${outcome.detail}`
    return { state, phase: 'unready', ready: false, reason, restart: reason, nextInMs: rules.periodMs }
  }
  const failingSince = s.failingSince ?? at
  const failingFor = at - failingSince
  const state: ProbeState = { ...s, ready: false, failingSince }
  const reason = `readiness probe failed${failingFor > 0 ? ` for ${secs(failingFor)}` : ''}: ${outcome.detail}`
  return {
    state,
    phase: 'unready',
    ready: false,
    reason,
    restart: failingFor >= rules.failureThresholdMs ? reason : null,
    nextInMs: rules.periodMs
  }
}

/** 0.5 s, 12 s, 120 s. */
export function secs (ms: number): string {
  const s = ms / 1000
  return `${s < 10 ? Math.round(s * 10) / 10 : Math.round(s)} s`
}
