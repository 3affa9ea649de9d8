/**
 * The replica supervisor: runs this node's inference engine (llama.cpp's
 * server, vLLM, a BitNet server, the simulator) or watches one managed
 * elsewhere, and says at every moment whether it can take traffic.
 *
 * - start(): spawns the engine (launch.ts decides how, process.ts does it)
 *   and begins probing; it does not wait for readiness.
 * - Readiness: SkyServe's probe semantics, as a pure step function
 *   (probe.ts has the table and the evidence). `ready` is true only while the
 *   last probe passed and the supervisor is not stopping.
 * - Crashes: an exit the supervisor did not ask for is reported
 *   (`replica:exit`) and the engine is started again after a back-off
 *   (backoff.ts: 1 s doubling to 60 s, reset by a minute of readiness). A run
 *   that stays unready beyond the probe's limits is killed and restarted the
 *   same way.
 * - Load: the engine's `/metrics` is scraped every second (metricsIntervalMs)
 *   for its running and waiting requests and KV-cache use (engine-metrics.ts),
 *   so the daemon sees load from clients that bypass meshd. An engine that
 *   publishes none is asked again every 15 s only.
 * - Output: the engine's stdout/stderr go into the daemon's log, bounded
 *   (output.ts).
 * - stop(): SIGTERM to the process group, SIGKILL after the grace period; an
 *   exit during stop() is never a crash. Idempotent.
 *
 * Nothing here throws into the daemon: every error of the child, the probe or
 * the scrape is caught, logged and shown in snapshot().
 *
 * Timers act only for the run they were set for (a run is one process of the
 * engine): a probe answer or a scrape that comes back after the run ended is
 * dropped, so a stale callback can never mark a new process ready.
 */
import { EventEmitter } from 'node:events'
import { basename } from 'node:path'
import { Agent } from 'undici'
import type { Logger } from 'pino'
import type { ReplicaConfig } from '../config/schema.ts'
import { afterFailure, DEFAULT_BACKOFF, INITIAL_BACKOFF, type BackoffPolicy, type BackoffState } from './backoff.ts'
import { planLaunch, shellQuote, urlFor, type Launch } from './launch.ts'
import { captureOutput, DEFAULT_OUTPUT_LIMITS, jsonObjectLine, lastWords, type OutputCapture, type OutputLimits } from './output.ts'
import { initialProbeState, probeRules, probeStep, secs, type ProbeOutcome, type ProbeRules, type ProbeState, type ProbeStep } from './probe.ts'
import { runProbe, scrapeEngine } from './probe-http.ts'
import { describeExit, spawnReplica, type ExitInfo, type ReplicaProcess } from './process.ts'

import type { ReplicaState, ReplicaEngineLoad, ReplicaSnapshot, ReplicaExit, ReplicaSupervisorEvents, ReplicaSupervisorInit, ReplicaMetrics, ReplicaSupervisorComponents } from './supervisor-types.ts'
import type { Startable } from '../../mesh/startable.ts'
export type { ReplicaState, ReplicaEngineLoad, ReplicaSnapshot, ReplicaExit, ReplicaSupervisorEvents, ReplicaSupervisorInit, ReplicaMetrics, ReplicaSupervisorComponents }

const METRICS_INTERVAL_MS = 1000
const METRICS_IDLE_INTERVAL_MS = 15_000
const STOP_GRACE_MS = 30_000
const RESTART_GRACE_MS = 10_000
/** After an exit, how long to wait for the last output lines (for the exit reason). */
const OUTPUT_DRAIN_MS = 500

/** One process of the engine (or, for a server managed elsewhere, one stretch of probing). */
interface Run {
  readonly id: number
  proc: ReplicaProcess | null
  output: OutputCapture | null
  outputDone: Promise<void>
  url: string | null
  probe: ProbeState
  readySince: number | null
  longestReadyMs: number
  /** Set when the supervisor itself kills this run to restart it. */
  killReason: string | null
  /** The process has exited (its pid is history). */
  exited: boolean
  killTimer: NodeJS.Timeout | undefined
  probeTimer: NodeJS.Timeout | undefined
  scrapeTimer: NodeJS.Timeout | undefined
  probing: boolean
  probeSoon: boolean
  scraping: boolean
  scrapeIdle: boolean
  gaveUpLogged: boolean
}

export class ReplicaSupervisor extends EventEmitter<ReplicaSupervisorEvents> implements Startable {
  readonly nodeName: string
  private readonly cfg: ReplicaConfig
  private readonly init: ReplicaSupervisorInit
  private readonly log: Logger
  private readonly metrics: ReplicaMetrics
  private readonly now: () => number
  private readonly rules: ProbeRules
  private readonly backoffPolicy: BackoffPolicy
  private readonly outputLimits: OutputLimits
  private readonly metricsIntervalMs: number
  private readonly metricsIdleIntervalMs: number
  private readonly metricsTimeoutMs: number
  private readonly stopGraceMs: number
  private readonly restartGraceMs: number

  private launch: Launch | null = null
  private agent: Agent | null = null
  private current: Run | null = null
  private runSeq = 0
  private state: ReplicaState = 'stopped'
  private reason = 'not started'
  private isReady = false
  private engine: ReplicaEngineLoad | null = null
  private restarts = 0
  private lastExit: (ExitInfo & { at: number }) | null = null
  private backoff: BackoffState = INITIAL_BACKOFF
  private restartTimer: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined

  constructor (init: ReplicaSupervisorInit, components: ReplicaSupervisorComponents) {
    super()
    this.init = init
    this.cfg = init.replica
    this.nodeName = init.nodeName
    this.now = init.now ?? Date.now
    this.metrics = components.metrics ?? {}
    this.log = components.log.child({ replica: init.name ?? defaultName(init.replica) })
    this.rules = probeRules(init.replica.readiness_probe, { startingPeriodMs: init.startingPeriodMs, failureThresholdMs: init.failureThresholdMs })
    this.backoffPolicy = { ...DEFAULT_BACKOFF, ...init.backoff }
    this.outputLimits = { ...DEFAULT_OUTPUT_LIMITS, ...init.output }
    this.metricsIntervalMs = init.metricsIntervalMs ?? METRICS_INTERVAL_MS
    this.metricsIdleIntervalMs = init.metricsIdleIntervalMs ?? METRICS_IDLE_INTERVAL_MS
    this.metricsTimeoutMs = init.metricsTimeoutMs ?? Math.min(5000, this.rules.timeoutMs)
    this.stopGraceMs = init.stopGraceMs ?? STOP_GRACE_MS
    this.restartGraceMs = init.restartGraceMs ?? RESTART_GRACE_MS
  }

  /**
   * Spawns the engine (when there is a command) and begins probing; does not
   * wait for readiness. A config it cannot run (see replicaConfigProblems)
   * leaves it `failed` with the reason, never throws. Calling it while
   * running does nothing; after stop() or a failure it starts afresh.
   */
  async start (): Promise<void> {
    if (this.state !== 'stopped' && this.state !== 'failed') return
    try {
      this.launch = planLaunch(this.cfg, this.nodeName, this.init.simArgs)
    } catch (err) {
      this.fail(`cannot start the replica: ${(err as Error).message}`)
      return
    }
    this.agent = new Agent({ connections: 2, keepAliveTimeout: 10_000, keepAliveMaxTimeout: 30_000 })
    this.backoff = INITIAL_BACKOFF
    this.beginRun()
  }

  /**
   * SIGTERM to the engine's process group, then SIGKILL of the group after
   * `graceMs` if it has not exited by then; resolves once it has exited.
   * Not ready from the first moment. Idempotent: a second call shares the
   * first one's promise.
   */
  stop (graceMs: number = this.stopGraceMs): Promise<void> {
    if (this.stopping !== undefined) return this.stopping
    if (this.state === 'stopped') return Promise.resolve()
    this.stopping = this.doStop(graceMs).finally(() => { this.stopping = undefined })
    return this.stopping
  }

  get url (): string | null {
    const live = this.state === 'starting' || this.state === 'ready' || this.state === 'unready' || this.state === 'stopping'
    return live ? this.current?.url ?? null : null
  }

  get ready (): boolean {
    return this.isReady
  }

  /** The engine's last scraped load (replaced whole on each scrape, never mutated), for per-request reads without a snapshot copy. */
  get engineLoad (): ReplicaEngineLoad | null {
    return this.engine
  }

  snapshot (): ReplicaSnapshot {
    return {
      ready: this.isReady,
      state: this.state,
      reason: this.reason,
      url: this.url,
      models: [...this.cfg.models],
      slots: this.cfg.slots,
      engine: this.engine === null ? null : { ...this.engine },
      restarts: this.restarts,
      pid: this.current !== null && !this.current.exited ? this.current.proc?.pid ?? null : null,
      lastExit: this.lastExit === null ? null : { ...this.lastExit }
    }
  }

  // -------------------------------------------------------------------------
  // Runs

  private beginRun (): void {
    const launch = this.launch!
    const at = this.now()
    const run: Run = {
      id: ++this.runSeq,
      proc: null,
      output: null,
      outputDone: Promise.resolve(),
      url: launch.kind === 'sim' ? null : launch.url,
      probe: initialProbeState(at),
      readySince: null,
      longestReadyMs: 0,
      killReason: null,
      exited: false,
      killTimer: undefined,
      probeTimer: undefined,
      scrapeTimer: undefined,
      probing: false,
      probeSoon: false,
      scraping: false,
      scrapeIdle: false,
      gaveUpLogged: false
    }
    this.current = run
    this.engine = null
    this.setState('starting', launch.kind === 'external' ? 'starting: probing the engine' : 'starting: engine launched')

    if (launch.kind !== 'external') {
      const command = launch.kind === 'sim' ? `exec ${launch.argv.map(shellQuote).join(' ')}` : launch.command
      let proc: ReplicaProcess
      try {
        proc = spawnReplica(command, { env: { ...this.engineEnv(launch), ...this.init.env }, cwd: this.init.cwd })
      } catch (err) {
        // spawn() reports most failures through 'error'; a synchronous throw is the same thing.
        const e: ExitInfo = { code: null, signal: null, error: (err as Error).message }
        queueMicrotask(() => { void this.onExit(run, e) })
        return
      }
      run.proc = proc
      const output = captureOutput(this.log, this.outputLimits, this.now, (n) => { this.metrics.outputDropped?.inc(n) })
      run.output = output
      const onStdoutLine = launch.kind === 'sim' ? (line: string) => { this.onSimLine(run, line) } : undefined
      run.outputDone = Promise.all([
        pump(proc.stdout, output.stream('stdout', onStdoutLine)),
        pump(proc.stderr, output.stream('stderr'))
      ]).then(() => {})
      this.log.info({ enginePid: proc.pid, run: run.id, command: launch.kind === 'sim' ? 'sim' : launch.command, url: run.url }, 'replica process started')
      void proc.exited.then((e) => this.onExit(run, e))
    } else {
      this.log.info({ url: run.url }, 'probing a replica managed elsewhere')
    }
    this.scheduleProbe(run, 0)
    if (run.url !== null) this.scheduleScrape(run, 0)
  }

  /** What a command learns from its environment: where to listen and what to serve. */
  private engineEnv (launch: Launch): Record<string, string> {
    const env: Record<string, string> = {
      MESHD_NODE_NAME: this.nodeName,
      MESHD_REPLICA_MODELS: this.cfg.models.join(','),
      MESHD_REPLICA_SLOTS: String(this.cfg.slots)
    }
    if (launch.kind === 'command') {
      env.MESHD_REPLICA_URL = launch.url
      try {
        const u = new URL(launch.url)
        env.MESHD_REPLICA_PORT = u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80'
      } catch {}
    }
    return env
  }

  /** The simulator's stdout protocol: one line `{"event":"listening","port":P}`. */
  private onSimLine (run: Run, line: string): void {
    if (this.current !== run || run.url !== null || this.launch?.kind !== 'sim') return
    const msg = jsonObjectLine(line)
    if (msg?.event !== 'listening' || typeof msg.port !== 'number') return
    run.url = urlFor(this.launch.host, msg.port)
    this.log.info({ url: run.url, enginePid: run.proc?.pid }, 'replica listening')
    this.scheduleProbe(run, 0)
    this.scheduleScrape(run, 0)
  }

  private live (run: Run): boolean {
    return this.current === run && run.killReason === null &&
      (this.state === 'starting' || this.state === 'ready' || this.state === 'unready')
  }

  // -------------------------------------------------------------------------
  // Readiness

  private scheduleProbe (run: Run, delayMs: number): void {
    if (run.probing) { if (delayMs === 0) run.probeSoon = true; return }
    clearTimeout(run.probeTimer)
    run.probeTimer = setTimeout(() => { void this.probeOnce(run) }, delayMs)
  }

  private async probeOnce (run: Run): Promise<void> {
    if (!this.live(run) || this.agent === null) return
    run.probing = true
    const started = this.now()
    let outcome: ProbeOutcome
    try {
      outcome = run.url === null
        ? { ok: false, detail: 'waiting for the engine to report its port', reached: false }
        : await runProbe(this.agent, run.url, this.rules)
    } catch (err) {
      outcome = { ok: false, detail: `probe error: ${(err as Error).message}` }
    } finally {
      run.probing = false
    }
    if (!this.live(run)) return
    // Only probes that reached for the engine count (not the wait for its port).
    if (run.url !== null) this.metrics.probes?.inc({ result: outcome.ok ? 'pass' : 'fail' })
    const at = this.now()
    const step = probeStep(this.rules, run.probe, outcome, at)
    run.probe = step.state
    if (!outcome.ok) this.log.debug({ run: run.id, detail: outcome.detail }, 'readiness probe failed')
    this.applyProbe(run, step, at)
    if (!this.live(run)) return
    const next = run.probeSoon ? 0 : Math.max(0, step.nextInMs - (at - started))
    run.probeSoon = false
    this.scheduleProbe(run, next)
  }

  private applyProbe (run: Run, step: ProbeStep, at: number): void {
    if (step.ready) {
      const was = this.isReady
      if (!was) run.readySince = at
      this.setState('ready', 'ready')
      this.setReady(true)
      // Load can now be real: read it at once rather than at the idle interval.
      if (!was && run.scrapeIdle) this.scheduleScrape(run, 0)
      return
    }
    if (run.readySince !== null) {
      run.longestReadyMs = Math.max(run.longestReadyMs, at - run.readySince)
      run.readySince = null
    }
    this.setState(step.phase, step.reason)
    this.setReady(false, step.reason)
    if (step.restart === null) return
    if (run.proc !== null) {
      this.restartRun(run, step.restart)
    } else if (!run.gaveUpLogged) {
      // A server managed elsewhere cannot be restarted by us: keep probing.
      run.gaveUpLogged = true
      this.log.warn({ reason: step.restart, url: run.url }, 'replica managed elsewhere is not ready; it is kept out of traffic until it passes its probe')
    }
  }

  /** Kills a run that failed its probe for too long; onExit() starts the next one after the back-off. */
  private restartRun (run: Run, reason: string): void {
    const proc = run.proc!
    run.killReason = reason
    clearTimeout(run.probeTimer)
    clearTimeout(run.scrapeTimer)
    this.engine = null
    this.log.warn({ run: run.id, enginePid: proc.pid, reason }, 'killing the replica to restart it')
    this.setState('restarting', `${reason}; killing it to restart`)
    this.setReady(false, this.reason)
    proc.signalGroup('SIGTERM')
    run.killTimer = setTimeout(() => { proc.signalGroup('SIGKILL') }, this.restartGraceMs)
  }

  // -------------------------------------------------------------------------
  // Exits and restarts

  private async onExit (run: Run, e: ExitInfo): Promise<void> {
    try {
      await this.handleExit(run, e)
    } catch (err) {
      // Never into the daemon; but a supervisor that lost track says so.
      this.log.error({ err: (err as Error).message }, 'replica supervisor error after an exit')
    }
  }

  private async handleExit (run: Run, e: ExitInfo): Promise<void> {
    run.exited = true
    clearTimeout(run.killTimer)
    clearTimeout(run.probeTimer)
    clearTimeout(run.scrapeTimer)
    // The watcher and anything the command left behind go with the group.
    run.proc?.signalGroup('SIGKILL')
    const at = this.now()
    this.lastExit = { ...e, at }
    this.metrics.exits?.inc()
    if (this.current !== run) return
    if (this.state === 'stopping' || this.state === 'stopped') return

    // Out of traffic at once; the details can wait for the last output lines.
    const described = describeExit(e)
    const readyFor = run.readySince !== null ? at - run.readySince : 0
    const longestReadyMs = Math.max(run.longestReadyMs, readyFor)
    this.engine = null
    this.setState('restarting', `the engine ${described}`)
    this.setReady(false, this.reason)
    await within(run.outputDone, OUTPUT_DRAIN_MS)
    run.proc?.release()
    if (this.current !== run || this.state !== 'restarting') return

    // What the engine said last only explains an exit it made itself.
    const said = e.code !== null && run.output !== null ? lastWords(run.output.tail()) : null
    const why = run.killReason !== null
      ? `${run.killReason}; the engine ${described}`
      : `the engine ${described}${said !== null ? `; it said: ${said}` : ''}`
    this.current = null

    // The simulator's exit 2 before it listened is a usage error: it will not get better.
    if (this.launch?.kind === 'sim' && e.code === 2 && run.url === null) {
      this.log.error({ code: e.code, tail: run.output?.tail() }, 'the simulator rejected its flags; not restarting')
      this.fail(why)
      this.emitSafe('replica:exit', { code: e.code, signal: e.signal, reason: why, restartInMs: null })
      return
    }

    const next = afterFailure(this.backoffPolicy, this.backoff, longestReadyMs)
    this.backoff = next.state
    this.setState('restarting', `${why}; restarting in ${secs(next.delayMs)}`)
    this.log.warn({
      run: run.id,
      enginePid: run.proc?.pid,
      code: e.code,
      signal: e.signal,
      restartInMs: next.delayMs,
      failuresInARow: next.state.failures,
      tail: run.output?.tail()
    }, 'replica exited')
    this.emitSafe('replica:exit', { code: e.code, signal: e.signal, reason: why, restartInMs: next.delayMs })
    clearTimeout(this.restartTimer)
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined
      if (this.state !== 'restarting' || this.current !== null) return
      this.restarts++
      this.metrics.restarts?.inc()
      this.beginRun()
    }, next.delayMs)
  }

  private async doStop (graceMs: number): Promise<void> {
    clearTimeout(this.restartTimer)
    this.restartTimer = undefined
    const run = this.current
    this.setState('stopping', 'stopping')
    this.setReady(false, 'stopping')
    if (run !== null) {
      clearTimeout(run.probeTimer)
      clearTimeout(run.scrapeTimer)
      clearTimeout(run.killTimer)
    }
    const proc = run?.proc ?? null
    if (proc !== null) {
      this.log.info({ enginePid: proc.pid, graceMs }, 'stopping the replica')
      proc.signalGroup('SIGTERM')
      const killer = setTimeout(() => {
        this.log.warn({ enginePid: proc.pid, graceMs }, 'replica did not exit within the grace period; SIGKILL')
        proc.signalGroup('SIGKILL')
      }, graceMs)
      // SIGKILL cannot be refused, but a process in uninterruptible sleep can
      // take its time: never hang the daemon's shutdown on it.
      const e = await within(proc.exited, graceMs + 5000)
      clearTimeout(killer)
      proc.signalGroup('SIGKILL')
      await within(run!.outputDone, OUTPUT_DRAIN_MS)
      proc.release()
      if (e === null) this.log.error({ enginePid: proc.pid }, 'replica did not exit after SIGKILL')
      else this.log.info({ enginePid: proc.pid, code: e.code, signal: e.signal }, 'replica process exited')
    }
    this.current = null
    this.engine = null
    const agent = this.agent
    this.agent = null
    if (agent !== null) await agent.destroy().catch(() => {})
    this.setState('stopped', 'stopped')
  }

  private fail (reason: string): void {
    this.current = null
    this.engine = null
    const agent = this.agent
    this.agent = null
    if (agent !== null) void agent.destroy().catch(() => {})
    this.setState('failed', reason)
    this.setReady(false, reason)
    this.log.error({ reason }, 'replica failed; not restarting')
  }

  // -------------------------------------------------------------------------
  // Engine load

  private scheduleScrape (run: Run, delayMs: number): void {
    if (run.scraping) return
    clearTimeout(run.scrapeTimer)
    run.scrapeTimer = setTimeout(() => { void this.scrapeOnce(run) }, delayMs)
  }

  private async scrapeOnce (run: Run): Promise<void> {
    if (!this.live(run) || run.url === null || this.agent === null) return
    run.scraping = true
    let r
    try {
      r = await scrapeEngine(this.agent, run.url, this.metricsTimeoutMs)
    } catch (err) {
      r = { ok: false as const, detail: (err as Error).message }
    } finally {
      run.scraping = false
    }
    if (!this.live(run)) return
    if (r.ok && r.load !== null) {
      this.engine = { ...r.load, at: this.now() }
      run.scrapeIdle = false
    } else {
      this.engine = null
      // No known gauges: ask rarely. A failed scrape: try again at the normal pace.
      run.scrapeIdle = r.ok
      if (!r.ok) this.log.debug({ run: run.id, detail: r.detail }, 'engine metrics scrape failed')
    }
    this.scheduleScrape(run, run.scrapeIdle ? this.metricsIdleIntervalMs : this.metricsIntervalMs)
  }

  // -------------------------------------------------------------------------
  // State and events

  private setState (state: ReplicaState, reason: string): void {
    const changed = state !== this.state
    this.state = state
    this.reason = reason
    if (changed) this.log.info({ state, reason }, `replica state: ${state}`)
  }

  private setReady (ready: boolean, reason = 'ready'): void {
    if (ready === this.isReady) return
    this.isReady = ready
    this.metrics.ready?.set(ready ? 1 : 0)
    if (ready) this.emitSafe('replica:ready')
    else this.emitSafe('replica:unready', reason)
  }

  private emitSafe<K extends keyof ReplicaSupervisorEvents> (name: K, ...args: ReplicaSupervisorEvents[K]): void {
    try {
      (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args)
    } catch (err) {
      this.log.error({ err: (err as Error).message, event: name }, 'a replica event listener threw')
    }
  }
}

/** Feeds a child's stream into a line splitter; resolves when the stream ends or fails. */
function pump (stream: NodeJS.ReadableStream & { setEncoding: (e: BufferEncoding) => unknown }, lines: { push: (s: string) => void, end: () => void }): Promise<void> {
  return new Promise((resolve) => {
    stream.setEncoding('utf8')
    stream.on('data', (s: string) => { lines.push(s) })
    let ended = false
    const done = (): void => {
      if (ended) return
      ended = true
      lines.end()
      resolve()
    }
    stream.once('end', done)
    stream.once('error', done)
    stream.once('close', done)
  })
}

/** The promise's value, or null once `ms` have passed; the timer never outlives the race. */
function within<T> (p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<null>((resolve) => { timer = setTimeout(() => { resolve(null) }, ms) })
  return Promise.race([p, limit]).finally(() => { clearTimeout(timer) })
}

/** "sim", "llama-server", "127.0.0.1:8000". */
export function defaultName (r: ReplicaConfig): string {
  if (r.command === 'sim') return 'sim'
  if (r.command !== undefined) {
    const words = r.command.trim().split(/\s+/).filter((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w) && w !== 'exec' && w !== 'env')
    const first = words[0]
    if (first !== undefined) return basename(first.replace(/^['"]|['"]$/g, '')) || 'replica'
  }
  if (r.url !== undefined) {
    try { return new URL(r.url).host } catch {}
  }
  return 'replica'
}
