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
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { MeshdProcess } from './meshd-process.ts'
import { generateSwarmKey } from '../../mesh/swarm-key.ts'
import { renderStatus } from '../cli/commands/status.ts'
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
  const started = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'meshd-demo-'))
  const workDir = join(dir, 'burst')
  const keyFile = join(dir, 'swarm.key')
  writeFileSync(keyFile, generateSwarmKey(), { mode: 0o600 })
  const events: string[] = []
  const say = (text: string): void => {
    const line = `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${text}`
    events.push(line)
    if (events.length > 10) events.shift()
    if (!tty && !opts.json) process.stdout.write(line + '\n')
  }
  const summary: Summary = {
    nodes: opts.nodes, converged_ms: null, leader_elected_ms: null, kill_detected_ms: null, rejoined_ms: null, burst: null, burst_ready_ms: null,
    failover_ms: null, requests: 0, failed: 0, served_by_burst: 0, served_by: {}, spend_per_hour_peak: 0, spent: 0, stopped_cleanly: false
  }

  const nodes: MeshdProcess[] = []
  let stopRequested = false
  let wake: () => void = () => {}
  const onSignal = (): void => { stopRequested = true; say('stopping (signal)'); wake() }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  /** The demo's pacing (so a person can follow it), not a test's wait. */
  const pause = (ms: number): Promise<void> => new Promise((resolve) => {
    if (stopRequested) { resolve(); return }
    const timer = setTimeout(resolve, ms)
    wake = () => { clearTimeout(timer); resolve() }
  })

  let view: StatusDocument | null = null
  const names = new Map<string, string>()
  const redraw = (): void => {
    if (!tty || opts.json) return
    const table = view === null ? '(waiting for the first status)' : renderStatus(view)
    const traffic = `traffic: ${summary.requests} requests, ${summary.failed} failed · served by ${Object.entries(summary.served_by).map(([id, n]) => `${names.get(id) ?? id.slice(-6)} ${n}`).join(', ')}`
    process.stdout.write('\x1b[2J\x1b[H' + `meshd demo · ${dir}\n\n${table}\n\n${traffic}\n\n${events.join('\n')}\n\nCtrl-C stops.\n`)
  }
  const printTable = (): void => { if (!tty && !opts.json && view !== null) process.stdout.write('\n' + renderStatus(view) + '\n\n') }
  const refresh = async (): Promise<void> => {
    const viewer = nodes.find((n) => n.running)
    if (viewer === undefined) return
    try {
      view = await viewer.status()
      for (const m of view.members) names.set(m.id, m.name)
      if (view.budget !== undefined) summary.spend_per_hour_peak = Math.max(summary.spend_per_hour_peak, view.budget.spend_per_hour)
      if (view.budget?.spend_today !== undefined) summary.spent = Math.max(summary.spent, view.budget.spend_today)
    } catch {}
    redraw()
  }
  const ticker = setInterval(() => { void refresh() }, 500)
  let traffic: Traffic | null = null

  try {
    say(`starting ${opts.nodes} daemons, each with a simulated inference engine (4 slots, ${SIM.tokens_per_second} tokens/s)`)
    for (let i = 0; i < opts.nodes && !stopRequested; i++) {
      const name = `demo-${i + 1}`
      const nodeDir = join(dir, name)
      mkdirSync(nodeDir, { recursive: true })
      const configPath = join(nodeDir, 'meshd.yaml')
      const socket = join(nodeDir, 'admin.sock')
      writeFileSync(configPath, JSON.stringify({
        cluster: 'demo',
        node_name: name,
        state_dir: join(nodeDir, 'state'),
        swarm_key_file: keyFile,
        region: `rack-${(i % 2) + 1}`,
        mesh: { listen: ['/ip4/127.0.0.1/tcp/0'], heartbeat_ms: 1000 },
        http: { listen: '127.0.0.1:0' },
        admin: { socket },
        replica: { models: [MODEL], slots: 4, command: 'sim', readiness_probe: { initial_delay_seconds: 60, period_seconds: 1 }, sim: SIM },
        burst: { mode: 'manual', cost_budget: 1.0, check_interval: '2s', idle_timeout: '10m', ttl: '1h' },
        providers: [{ name: 'workstation', kind: 'local', cost_per_hour: 0.30, max_instances: 4, work_dir: workDir, replica: { models: [MODEL], slots: 4, command: 'sim', sim: SIM } }]
      }, null, 2))
      const p = new MeshdProcess({ name, configPath, socket, logFile: join(nodeDir, 'meshd.log') })
      await p.start()
      nodes.push(p)
      names.set(p.info!.peer, name)
      say(`${name} is up: peer ${p.info!.peer.slice(0, 16)}…, mesh ${p.info!.addrs[0] ?? '?'}, http ${p.info!.http}`)
      if (i > 0) {
        await p.call('join', { addrs: [nodes[i - 1]!.joinAddr] }, 15_000)
        say(`${name} joined through ${nodes[i - 1]!.init.name} only`)
      }
    }

    const t0 = Date.now()
    if (!stopRequested && await until(() => allAlive(nodes, opts.nodes), 20_000, () => stopRequested)) {
      summary.converged_ms = Date.now() - t0
      say(`every daemon sees all ${opts.nodes} alive ${summary.converged_ms} ms after the last join (each learnt of the others through the one it joined)`)
    }
    const leaderOf = async (): Promise<string | null> => {
      const ss = await Promise.all(nodes.filter((n) => n.running).map(async (n) => n.status()))
      const l = ss[0]?.leader ?? null
      return l !== null && ss.every((s) => s.leader === l) ? l : null
    }
    let leader: string | null = null
    if (!stopRequested && await until(async () => (leader = await leaderOf()) !== null, 20_000, () => stopRequested)) {
      summary.leader_elected_ms = Date.now() - t0
      say(`the voters elected ${names.get(leader!)} as leader (term ${(await nodes[0]!.status()).term}): only it decides bursts`)
    }
    await refresh()
    printTable()

    // Clients talk to a follower, so that killing the leader later does not cut them off.
    const entry = nodes.find((n) => n.info!.peer !== leader) ?? nodes[0]!
    traffic = new Traffic(`http://${entry.info!.http}`, 12, summary)
    traffic.start()
    say(`traffic: 12 clients streaming chat completions into ${entry.init.name}'s front door; each request goes to the least-loaded member`)
    await pause(5000)
    say(`served so far: ${describeServed(summary, names)}`)

    const victim = nodes.find((n) => n.info!.peer !== leader && n !== entry)
    if (!stopRequested && victim !== undefined) {
      say(`kill -9 ${victim.init.name} (a crash, mid-traffic)`)
      const tk = Date.now()
      victim.signal('SIGKILL')
      await victim.exited()
      if (await until(async () => notAliveAnywhere(nodes, victim), 10_000, () => stopRequested)) {
        summary.kill_detected_ms = Date.now() - tk
        say(`every other daemon lists ${victim.init.name} as not alive after ${summary.kill_detected_ms} ms; requests it had not started answering were retried elsewhere, streams it was in the middle of ended with an error event (${summary.failed} so far)`)
      }
      await refresh()
      printTable()
      await pause(3000)
      say(`restarting ${victim.init.name} from its state dir, with no join`)
      const tr = Date.now()
      await victim.start()
      if (await until(() => allAlive(nodes, opts.nodes), 15_000, () => stopRequested)) {
        summary.rejoined_ms = Date.now() - tr
        say(`${victim.init.name} is back with the same peer id after ${summary.rejoined_ms} ms (it remembered its peers)`)
      }
    }

    if (!stopRequested) {
      const follower = nodes.find((n) => n.running && n.info!.peer !== leader) ?? nodes[0]!
      say(`meshd burst --count 5 on ${follower.init.name} (a follower: the request travels to the leader); budget 1.00/h, a local replica costs 0.30/h`)
      const tb = Date.now()
      try {
        const r = await follower.call('burst', { count: 5 }, 90_000) as { answer: { requested: number, granted: number, decision: string, reason: string, instances: string[] } }
        summary.burst = { requested: r.answer.requested, granted: r.answer.granted, decision: r.answer.decision, reason: r.answer.reason }
        say(`leader's decision: ${r.answer.decision} ${r.answer.granted} of ${r.answer.requested} (${r.answer.reason})`)
        if (await until(async () => (await follower.status()).members.filter((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true).length === r.answer.granted, 60_000, () => stopRequested)) {
          summary.burst_ready_ms = Date.now() - tb
          say(`${r.answer.granted} burst replicas are up and ready after ${summary.burst_ready_ms} ms; traffic spreads onto them`)
        }
      } catch (err) {
        say(`burst failed: ${(err as Error).message}`)
      }
      await refresh()
      printTable()
      await pause(6000)
      say(`served so far: ${describeServed(summary, names)}`)
    }

    if (!stopRequested) {
      const leaderNode = nodes.find((n) => n.running && n.info!.peer === leader)
      if (leaderNode !== undefined && leaderNode !== entry) {
        say(`kill -9 the leader, ${leaderNode.init.name}`)
        const tf = Date.now()
        leaderNode.signal('SIGKILL')
        await leaderNode.exited()
        if (await until(async () => { const l = await leaderOf(); return l !== null && l !== leader }, 15_000, () => stopRequested)) {
          summary.failover_ms = Date.now() - tf
          leader = await leaderOf()
          say(`the survivors elected ${names.get(leader!)} after ${summary.failover_ms} ms; it holds the replicated ledger of the bursts and carries on`)
        }
        await leaderNode.start()
        await refresh()
        printTable()
        await pause(3000)
      }
    }

    const left = opts.durationMs - (Date.now() - started)
    if (left > 0 && !stopRequested) {
      say(`running until ${Math.round(opts.durationMs / 1000)} s have passed (Ctrl-C stops earlier)`)
      await pause(left)
    }

    if (summary.burst !== null) {
      say('meshd burst --terminate --all: the burst replicas drain and are released')
      const any = nodes.find((n) => n.running)
      try {
        await any?.call('terminate', { all: true }, 90_000)
        await until(async () => runningBurst(workDir) === 0, 60_000, () => false)
        say('every burst replica has stopped; spend is back to 0.00/h')
      } catch (err) {
        say(`release failed: ${(err as Error).message}`)
      }
    }
  } catch (err) {
    say(`demo failed: ${(err as Error).message}`)
    process.stderr.write(`meshd demo: ${(err as Error).message}\n`)
  } finally {
    await traffic?.stop()
    clearInterval(ticker)
    await refresh()
    say('stopping every daemon (SIGTERM: drain, then exit 0)')
    const exits = await Promise.all(nodes.map(async (n) => n.stop()))
    summary.stopped_cleanly = exits.every((e) => e.code === 0 || (e.code === null && e.signal === null))
    killBurst(workDir)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (!opts.keep) rmSync(dir, { recursive: true, force: true })
  }
  summary.served_by_burst = Object.entries(summary.served_by).filter(([id]) => (names.get(id) ?? '').startsWith('burst-')).reduce((s, [, n]) => s + n, 0)

  if (opts.json) process.stdout.write(JSON.stringify({ ...summary, served_by: Object.fromEntries(Object.entries(summary.served_by).map(([id, n]) => [names.get(id) ?? id, n])) }, null, 2) + '\n')
  else {
    const fmt = (ms: number | null): string => ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`
    if (tty) redraw()
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
      opts.keep ? `  configs and logs kept in ${dir}` : '',
      ''
    ].join('\n'))
  }
  return summary.stopped_cleanly && summary.converged_ms !== null && summary.leader_elected_ms !== null ? 0 : 1
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

async function allAlive (nodes: MeshdProcess[], n: number): Promise<boolean> {
  for (const p of nodes) {
    if (!p.running) return false
    const s = await p.status()
    if (s.members.filter((m) => m.state === 'alive' && m.burst !== true).length !== n) return false
  }
  return true
}

async function notAliveAnywhere (nodes: MeshdProcess[], victim: MeshdProcess): Promise<boolean> {
  for (const p of nodes) {
    if (p === victim || !p.running) continue
    const s = await p.status()
    if (s.members.find((m) => m.id === victim.info?.peer)?.state === 'alive') return false
  }
  return true
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

/** Polls a condition every 100 ms until true, a deadline, or a stop. */
async function until (cond: () => Promise<boolean>, timeoutMs: number, stop: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && !stop()) {
    try { if (await cond()) return true } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}
