/**
 * `meshd demo`: the whole job on one machine, narrated. Real daemons (the
 * same `meshd start` a systemd unit runs) on loopback, each with its own
 * state dir and a simulated inference engine, a local burst provider, and
 * traffic from an OpenAI-style client through one node's front door:
 *
 *   1. three voters start and join in a chain; they elect a leader;
 *   2. traffic flows and spreads over the members (least load);
 *   3. a member is killed for real: noticed at once, no request lost; it is
 *      restarted from its state dir and rejoins;
 *   4. `burst --count 5` within a 1.00/h budget at 0.30/h: cut to 3; the
 *      three burst replicas join and take traffic;
 *   5. the leader is killed: the others elect a new one within seconds;
 *   6. the burst replicas are released; a summary.
 */
import { rmSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Pool } from 'undici'
import type { MeshdProcess } from './meshd-process.ts'
import { LocalCluster, agreedLeader, aliveOn, notAliveOn, statuses } from './cluster.ts'
import { sleep, waitFor } from './poll.ts'
import { renderStatus } from '../cli/common/render-status.ts'
import type { StatusDocument } from '../status.ts'
import { readManifest } from '../../providers/local/manifest.ts'
import { isOurProcess } from '../../providers/local/liveness.ts'

export interface DemoOptions {
  durationMs: number
  nodes: number
  keep: boolean
  json: boolean
}

interface Summary {
  nodes: number
  converged_ms: number | null
  leader_elected_ms: number | null
  kill_detected_ms: number | null
  rejoined_ms: number | null
  burst: { requested: number, granted: number, decision: string, reason: string } | null
  burst_ready_ms: number | null
  failover_ms: number | null
  requests: number
  failed: number
  served_by_burst: number
  served_by: Record<string, number>
  spend_per_hour_peak: number
  spent: number
  stopped_cleanly: boolean
}

const tty = process.stdout.isTTY === true
const MODEL = 'llama3'
const SIM = { ttft_ms: 60, tokens_per_second: 40, max_tokens: 24 }

export async function runDemo (opts: DemoOptions): Promise<number> {
  const demo = new Demo(opts)
  try {
    await demo.script()
  } catch (err) {
    demo.say(`demo failed: ${(err as Error).message}`)
    process.stderr.write(`meshd demo: ${(err as Error).message}\n`)
  } finally {
    await demo.shutdown()
  }
  demo.report()
  return demo.exitCode()
}

/** One run of the demo: its mesh, its narration, its traffic and what it measured. */
class Demo {
  private readonly opts: DemoOptions
  private readonly started = Date.now()
  private readonly cluster: LocalCluster
  private readonly workDir: string
  private readonly events: string[] = []
  private readonly summary: Summary
  private readonly names = new Map<string, string>()
  /** Aborted on SIGINT / SIGTERM: every wait and pause ends at once. */
  private readonly stop = new AbortController()
  private readonly onSignal = (): void => { this.say('stopping (signal)'); this.stop.abort() }
  private readonly ticker: NodeJS.Timeout
  private nodes: MeshdProcess[] = []
  private view: StatusDocument | null = null
  private traffic: Traffic | null = null
  /** Whose view of the mesh the demo shows (the traffic's entry node, once traffic runs). */
  private viewer: MeshdProcess | null = null
  private leader: string | null = null
  /** When the last daemon had joined: convergence and the election are timed from here. */
  private joinedAt = 0

  constructor (opts: DemoOptions) {
    this.opts = opts
    this.cluster = new LocalCluster({ label: 'demo', cluster: 'demo', heartbeatMs: 1000, logToFile: true })
    this.workDir = join(this.cluster.dir, 'burst')
    this.summary = {
      nodes: opts.nodes, converged_ms: null, leader_elected_ms: null, kill_detected_ms: null, rejoined_ms: null, burst: null, burst_ready_ms: null,
      failover_ms: null, requests: 0, failed: 0, served_by_burst: 0, served_by: {}, spend_per_hour_peak: 0, spent: 0, stopped_cleanly: false
    }
    process.on('SIGINT', this.onSignal)
    process.on('SIGTERM', this.onSignal)
    this.ticker = setInterval(() => { void this.refresh() }, 500)
  }

  private get stopRequested (): boolean { return this.stop.signal.aborted }

  /** The whole story, step by step; each step is skipped once a stop is requested. */
  async script (): Promise<void> {
    await this.startMesh()
    await this.electLeader()
    const entry = this.startTraffic()
    await this.pause(5000)
    this.say(`served so far: ${describeServed(this.summary, this.names)}`)
    await this.killAndRestartMember(entry)
    await this.burst()
    await this.killLeader(entry)
    await this.runOut()
    await this.release()
  }

  /** 1. The daemons start one after another, each joined only to the one before it; the mesh converges. */
  private async startMesh (): Promise<void> {
    this.say(`starting ${this.opts.nodes} daemons, each with a simulated inference engine (4 slots, ${SIM.tokens_per_second} tokens/s)`)
    this.nodes = await this.cluster.startAll(Array.from({ length: this.opts.nodes }, (_, i) => ({ name: `demo-${i + 1}`, config: this.nodeConfig(i) })), {
      join: 'chain',
      signal: this.stop.signal,
      onUp: (p, through) => {
        this.names.set(p.info!.peer, p.init.name)
        this.say(`${p.init.name} is up: peer ${p.info!.peer.slice(0, 16)}…, mesh ${p.info!.addrs[0] ?? '?'}, http ${p.info!.http}`)
        if (through !== undefined) this.say(`${p.init.name} joined through ${through.init.name} only`)
      }
    })
    this.joinedAt = Date.now()
    if (await this.reached(() => this.allAlive(), 20_000)) {
      this.summary.converged_ms = Date.now() - this.joinedAt
      this.say(`every daemon sees all ${this.opts.nodes} alive ${this.summary.converged_ms} ms after the last join (each learnt of the others through the one it joined)`)
    }
  }

  /** What a node runs beside the defaults: a sim replica, a budget and the local provider. */
  private nodeConfig (i: number): Record<string, unknown> {
    return {
      region: `rack-${(i % 2) + 1}`,
      replica: { models: [MODEL], slots: 4, command: 'sim', readiness_probe: { initial_delay_seconds: 60, period_seconds: 1 }, sim: SIM },
      burst: { mode: 'manual', cost_budget: 1.0, check_interval: '2s', idle_timeout: '10m', ttl: '1h' },
      providers: [{ name: 'workstation', kind: 'local', cost_per_hour: 0.30, max_instances: 4, work_dir: this.workDir, replica: { models: [MODEL], slots: 4, command: 'sim', sim: SIM } }]
    }
  }

  /** 1b. The voters elect a leader (timed from the last join, like the convergence). */
  private async electLeader (): Promise<void> {
    if (await this.reached(async () => (this.leader = await this.leaderOf()) !== null, 20_000)) {
      this.summary.leader_elected_ms = Date.now() - this.joinedAt
      this.say(`the voters elected ${this.names.get(this.leader!)} as leader (term ${(await this.nodes[0]!.status()).term}): only it decides bursts`)
    }
    await this.refresh()
    this.printTable()
  }

  /** 2. Clients talk to a follower, so that killing the leader later does not cut them off. */
  private startTraffic (): MeshdProcess {
    const entry = this.nodes.find((n) => n.info!.peer !== this.leader) ?? this.nodes[0]!
    this.traffic = new Traffic(`http://${entry.info!.http}`, 12, this.summary)
    this.viewer = entry
    this.traffic.start()
    this.say(`traffic: 12 clients streaming chat completions into ${entry.init.name}'s front door; each request goes to the least-loaded member`)
    return entry
  }

  /** 3. A member (neither the leader nor the entry) is killed mid-traffic, noticed, restarted with no join. */
  private async killAndRestartMember (entry: MeshdProcess): Promise<void> {
    const victim = this.nodes.find((n) => n.info!.peer !== this.leader && n !== entry)
    if (this.stopRequested || victim === undefined) return
    this.say(`kill -9 ${victim.init.name} (a crash, mid-traffic)`)
    const tk = Date.now()
    victim.signal('SIGKILL')
    await victim.exited()
    if (await this.reached(() => notAliveOn(this.nodes.filter((p) => p !== victim && p.running), victim.info!.peer), 10_000)) {
      this.summary.kill_detected_ms = Date.now() - tk
      this.say(`every other daemon lists ${victim.init.name} as not alive after ${this.summary.kill_detected_ms} ms; requests it had not started answering were retried elsewhere, streams it was in the middle of ended with an error event (${this.summary.failed} so far)`)
    }
    await this.refresh()
    this.printTable()
    await this.pause(3000)
    this.say(`restarting ${victim.init.name} from its state dir, with no join`)
    const tr = Date.now()
    await victim.start()
    if (await this.reached(() => this.allAlive(), 15_000)) {
      this.summary.rejoined_ms = Date.now() - tr
      this.say(`${victim.init.name} is back with the same peer id after ${this.summary.rejoined_ms} ms (it remembered its peers)`)
    }
  }

  /** 4. `burst --count 5` on a follower: the leader cuts it to what the budget allows; the replicas come up and take traffic. */
  private async burst (): Promise<void> {
    if (this.stopRequested) return
    const follower = this.nodes.find((n) => n.running && n.info!.peer !== this.leader) ?? this.nodes[0]!
    this.say(`meshd burst --count 5 on ${follower.init.name} (a follower: the request travels to the leader); budget 1.00/h, a local replica costs 0.30/h`)
    const tb = Date.now()
    try {
      const r = await follower.call('burst', { count: 5 }, 90_000) as { answer: { requested: number, granted: number, decision: string, reason: string, instances: string[] } }
      this.summary.burst = { requested: r.answer.requested, granted: r.answer.granted, decision: r.answer.decision, reason: r.answer.reason }
      this.say(`leader's decision: ${r.answer.decision} ${r.answer.granted} of ${r.answer.requested} (${r.answer.reason})`)
      if (await this.reached(async () => (await follower.status()).members.filter((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true).length === r.answer.granted, 60_000)) {
        this.summary.burst_ready_ms = Date.now() - tb
        this.say(`${r.answer.granted} burst replicas are up and ready after ${this.summary.burst_ready_ms} ms; traffic spreads onto them`)
      }
    } catch (err) {
      this.say(`burst failed: ${(err as Error).message}`)
    }
    await this.refresh()
    this.printTable()
    await this.pause(6000)
    this.say(`served so far: ${describeServed(this.summary, this.names)}`)
  }

  /** 5. The leader is killed: the survivors elect another, which carries on from the replicated ledger. */
  private async killLeader (entry: MeshdProcess): Promise<void> {
    if (this.stopRequested) return
    const old = this.leader
    const leaderNode = this.nodes.find((n) => n.running && n.info!.peer === old)
    if (leaderNode === undefined || leaderNode === entry) return
    this.say(`kill -9 the leader, ${leaderNode.init.name}`)
    const tf = Date.now()
    leaderNode.signal('SIGKILL')
    await leaderNode.exited()
    if (await this.reached(async () => { const l = await this.leaderOf(); return l !== null && l !== old }, 15_000)) {
      this.summary.failover_ms = Date.now() - tf
      this.leader = await this.leaderOf()
      this.say(`the survivors elected ${this.names.get(this.leader!)} after ${this.summary.failover_ms} ms; it holds the replicated ledger of the bursts and carries on`)
    }
    await leaderNode.start()
    await this.refresh()
    this.printTable()
    await this.pause(3000)
  }

  /** Until the requested duration has passed (Ctrl-C stops earlier). */
  private async runOut (): Promise<void> {
    const left = this.opts.durationMs - (Date.now() - this.started)
    if (left > 0 && !this.stopRequested) {
      this.say(`running until ${Math.round(this.opts.durationMs / 1000)} s have passed (Ctrl-C stops earlier)`)
      await this.pause(left)
    }
  }

  /** 6. The burst replicas drain and are released (also after a stop request: nothing may be left billing). */
  private async release (): Promise<void> {
    if (this.summary.burst === null) return
    this.say('meshd burst --terminate --all: the burst replicas drain and are released')
    const any = this.nodes.find((n) => n.running)
    try {
      await any?.call('terminate', { all: true }, 90_000)
      await waitFor(() => runningBurst(this.workDir) === 0, { timeoutMs: 60_000, what: 'every burst replica to stop' })
      this.say('every burst replica has stopped; spend is back to 0.00/h')
    } catch (err) {
      this.say(`release failed: ${(err as Error).message}`)
    }
  }

  /** Stops the traffic and every daemon (SIGTERM: drain, then exit 0), kills any burst node left, removes the directory unless kept. */
  async shutdown (): Promise<void> {
    await this.traffic?.stop()
    clearInterval(this.ticker)
    await this.refresh()
    this.say('stopping every daemon (SIGTERM: drain, then exit 0)')
    const exits = await this.cluster.stop({ keep: true })
    this.summary.stopped_cleanly = exits.every((e) => e.code === 0 || (e.code === null && e.signal === null))
    killBurst(this.workDir)
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
    if (!this.opts.keep) rmSync(this.cluster.dir, { recursive: true, force: true })
  }

  /** The summary, as JSON or as text. */
  report (): void {
    const summary = this.summary
    summary.served_by_burst = Object.entries(summary.served_by).filter(([id]) => (this.names.get(id) ?? '').startsWith('burst-')).reduce((s, [, n]) => s + n, 0)
    if (this.opts.json) {
      process.stdout.write(JSON.stringify({ ...summary, served_by: Object.fromEntries(Object.entries(summary.served_by).map(([id, n]) => [this.names.get(id) ?? id, n])) }, null, 2) + '\n')
      return
    }
    const fmt = (ms: number | null): string => ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`
    if (tty) this.redraw()
    process.stdout.write([
      '',
      'Summary',
      `  daemons (voters):            ${summary.nodes}`,
      `  converged after the joins:   ${fmt(summary.converged_ms)}`,
      `  leader elected after:        ${fmt(summary.leader_elected_ms)}`,
      `  kill -9 noticed by all:      ${fmt(summary.kill_detected_ms)}`,
      `  restart alive everywhere:    ${fmt(summary.rejoined_ms)}`,
      `  burst:                       ${summary.burst === null ? 'n/a' : `${summary.burst.decision} ${summary.burst.granted} of ${summary.burst.requested} (${summary.burst.reason}); ready after ${fmt(summary.burst_ready_ms)}`}`,
      `  leader failover:             ${fmt(summary.failover_ms)}`,
      `  requests:                    ${summary.requests} (${summary.failed} failed), ${summary.served_by_burst} served by burst replicas`,
      `  burst spend:                 peak ${summary.spend_per_hour_peak.toFixed(2)}/h of 1.00/h; ${summary.spent.toFixed(4)} spent`,
      `  stopped cleanly:             ${summary.stopped_cleanly ? 'yes' : 'no'}`,
      this.opts.keep ? `  configs and logs kept in ${this.cluster.dir}` : '',
      ''
    ].join('\n'))
  }

  exitCode (): number {
    const s = this.summary
    return s.stopped_cleanly && s.converged_ms !== null && s.leader_elected_ms !== null ? 0 : 1
  }

  say (text: string): void {
    const line = `[${((Date.now() - this.started) / 1000).toFixed(1).padStart(5)}s] ${text}`
    this.events.push(line)
    if (this.events.length > 10) this.events.shift()
    if (!tty && !this.opts.json) process.stdout.write(line + '\n')
  }

  /** The demo's pacing (so a person can follow it), not a test's wait; a stop request ends it. */
  private async pause (ms: number): Promise<void> {
    await sleep(ms, this.stop.signal)
  }

  /** Whether `probe` came true within `timeoutMs` (false also after a stop request). */
  private async reached (probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
    if (this.stopRequested) return false
    return waitFor(probe, { timeoutMs, what: 'the demo', signal: this.stop.signal }).then(() => true, () => false)
  }

  /** Every daemon runs and lists every daemon alive. */
  private async allAlive (): Promise<boolean> {
    return this.nodes.every((p) => p.running) && aliveOn(this.nodes, this.nodes.map((p) => p.info!.peer))
  }

  /** The leader every running daemon names, or null. */
  private async leaderOf (): Promise<string | null> {
    return agreedLeader(await statuses(this.nodes.filter((n) => n.running)))?.leader ?? null
  }

  private redraw (): void {
    if (!tty || this.opts.json) return
    const table = this.view === null ? '(waiting for the first status)' : renderStatus(this.view)
    const traffic = `traffic: ${this.summary.requests} requests, ${this.summary.failed} failed · served by ${Object.entries(this.summary.served_by).map(([id, n]) => `${this.names.get(id) ?? id.slice(-6)} ${n}`).join(', ')}`
    process.stdout.write('\x1b[2J\x1b[H' + `meshd demo · ${this.cluster.dir}\n\n${table}\n\n${traffic}\n\n${this.events.join('\n')}\n\nCtrl-C stops.\n`)
  }

  private printTable (): void {
    if (!tty && !this.opts.json && this.view !== null) process.stdout.write('\n' + renderStatus(this.view) + '\n\n')
  }

  private async refresh (): Promise<void> {
    // The traffic's entry node is never killed: its view is the mesh's, not
    // that of a member restarted a moment ago and still finding its peers.
    const viewer = this.viewer?.running === true ? this.viewer : this.nodes.find((n) => n.running)
    if (viewer === undefined) return
    try {
      this.view = await viewer.status()
      for (const m of this.view.members) this.names.set(m.id, m.name)
      if (this.view.budget !== undefined) this.summary.spend_per_hour_peak = Math.max(this.summary.spend_per_hour_peak, this.view.budget.spend_per_hour)
      if (this.view.budget?.spend_today !== undefined) this.summary.spent = Math.max(this.summary.spent, this.view.budget.spend_today)
    } catch {}
    this.redraw()
  }
}

/** Streaming chat completions from `clients` loops, counting who served each. */
class Traffic {
  private readonly pool: Pool
  private readonly clients: number
  private readonly summary: Summary
  private running = false
  private loops: Array<Promise<void>> = []

  constructor (origin: string, clients: number, summary: Summary) {
    this.pool = new Pool(origin, { connections: clients })
    this.clients = clients
    this.summary = summary
  }

  start (): void {
    this.running = true
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'tell me about the mesh' }], stream: true })
    for (let i = 0; i < this.clients; i++) {
      this.loops.push((async () => {
        while (this.running) {
          try {
            const r = await this.pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body })
            let text = ''
            for await (const chunk of r.body) text += chunk.toString()
            const by = String(r.headers['x-meshd-served-by'] ?? '?')
            this.summary.requests++
            if (r.statusCode !== 200 || text.includes('"error"')) this.summary.failed++
            else this.summary.served_by[by] = (this.summary.served_by[by] ?? 0) + 1
          } catch {
            if (this.running) this.summary.failed++
          }
        }
      })())
    }
  }

  async stop (): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
    await this.pool.close()
  }
}

function describeServed (s: Summary, names: Map<string, string>): string {
  return Object.entries(s.served_by).map(([id, n]) => `${names.get(id) ?? id.slice(-6)} ${n}`).join(', ') + ` (${s.failed} failed)`
}

/** Burst nodes of the demo still running (a pid counts only while it runs its own config: pids are reused). */
function burstPids (workDir: string): number[] {
  let names: string[] = []
  try { names = readdirSync(workDir) } catch {}
  return names.map((n) => readManifest(join(workDir, n))).filter((m) => m !== null && m.pid !== null && isOurProcess(m.pid, m.config)).map((m) => m!.pid!)
}

function runningBurst (workDir: string): number {
  return burstPids(workDir).length
}

/**
 * Nothing the demo started may outlive it: every process whose command line
 * names a file under the burst work dir (burst nodes are detached, so they
 * are not in our process group), found through /proc.
 */
function killBurst (workDir: string): void {
  const pids = new Set(burstPids(workDir))
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(workDir)) pids.add(Number(entry))
    } catch {}
  }
  for (const pid of pids) { try { process.kill(-pid, 'SIGKILL') } catch {} try { process.kill(pid, 'SIGKILL') } catch {} }
}

