/**
 * `meshd demo`: the whole job on one machine, narrated. Real daemons (the
 * same `meshd start` a systemd unit runs) on loopback, each with its own
 * state dir, joined in a chain; the live member table; a real kill -9 to show
 * failure detection, and a restart from the state dir to show rejoining.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MeshdProcess } from '../local/meshd-process.ts'
import { generateSwarmKey } from '../../mesh/swarm-key.ts'
import { renderStatus } from '../cli/commands/status.ts'
import type { StatusDocument } from '../status.ts'

export interface DemoOptions {
  durationMs: number
  nodes: number
  keep: boolean
  json: boolean
}

interface Summary {
  nodes: number
  converged_ms: number | null
  kill_detected_ms: number | null
  rejoined_ms: number | null
  stopped_cleanly: boolean
}

const tty = process.stdout.isTTY === true

export async function runDemo (opts: DemoOptions): Promise<number> {
  const started = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'meshd-demo-'))
  const keyFile = join(dir, 'swarm.key')
  writeFileSync(keyFile, generateSwarmKey(), { mode: 0o600 })
  const events: string[] = []
  const say = (text: string): void => {
    const line = `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${text}`
    events.push(line)
    if (events.length > 8) events.shift()
    if (!tty && !opts.json) process.stdout.write(line + '\n')
  }
  const summary: Summary = { nodes: opts.nodes, converged_ms: null, kill_detected_ms: null, rejoined_ms: null, stopped_cleanly: false }

  const nodes: MeshdProcess[] = []
  let stopRequested = false
  let wake: () => void = () => {}
  const onSigint = (): void => { stopRequested = true; say('Ctrl-C: stopping'); wake() }
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigint)
  /** Sleeps until `ms` passed or Ctrl-C; the demo's pacing, not a test's wait. */
  const pause = (ms: number): Promise<void> => new Promise((resolve) => {
    if (stopRequested) { resolve(); return }
    const timer = setTimeout(resolve, ms)
    wake = () => { clearTimeout(timer); resolve() }
  })

  let view: StatusDocument | null = null
  const redraw = (): void => {
    if (!tty || opts.json) return
    const table = view === null ? '(waiting for the first status)' : renderStatus(view)
    process.stdout.write('\x1b[2J\x1b[H' + `meshd demo · ${opts.nodes} daemons on loopback · ${dir}\n\n${table}\n\n${events.join('\n')}\n\nCtrl-C stops.\n`)
  }
  const refresh = async (): Promise<void> => {
    const viewer = nodes.find((n) => n.running)
    if (viewer === undefined) return
    try { view = await viewer.status() } catch {}
    redraw()
  }
  const ticker = setInterval(() => { void refresh() }, 500)

  try {
    say(`starting ${opts.nodes} daemons (state in ${dir})`)
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
        admin: { socket }
      }, null, 2))
      const p = new MeshdProcess({ name, configPath, socket, logFile: join(nodeDir, 'meshd.log') })
      await p.start()
      nodes.push(p)
      say(`${name} is up: peer ${p.info!.peer.slice(0, 16)}…, mesh ${p.info!.addrs[0] ?? '?'}, http ${p.info!.http}`)
      if (i > 0) {
        await p.call('join', { addrs: [nodes[i - 1]!.joinAddr] }, 15_000)
        say(`${name} joined through ${nodes[i - 1]!.init.name} only`)
      }
    }

    const t0 = Date.now()
    if (!stopRequested && await until(() => allAlive(nodes, opts.nodes), 15_000, () => stopRequested)) {
      summary.converged_ms = Date.now() - t0
      say(`every daemon sees all ${opts.nodes} alive, ${summary.converged_ms} ms after the last join (each learnt of the others through the one it joined)`)
    }
    await refresh()
    if (!tty && !opts.json && view !== null) process.stdout.write('\n' + renderStatus(view) + '\n\n')
    await pause(4000)

    const victim = nodes[nodes.length - 1]!
    if (!stopRequested && nodes.length >= 3) {
      say(`kill -9 ${victim.init.name} (a crash: no goodbye)`)
      const tk = Date.now()
      victim.signal('SIGKILL')
      await victim.exited()
      if (await until(async () => notAliveAnywhere(nodes, victim), 10_000, () => stopRequested)) {
        summary.kill_detected_ms = Date.now() - tk
        say(`every other daemon lists ${victim.init.name} as not alive after ${summary.kill_detected_ms} ms (its connections closed: suspect at once)`)
      }
      await refresh()
      if (!tty && !opts.json && view !== null) process.stdout.write('\n' + renderStatus(view) + '\n\n')
      await pause(4000)
      if (!stopRequested) {
        say(`restarting ${victim.init.name} from its state dir, with no join`)
        const tr = Date.now()
        await victim.start()
        if (await until(() => allAlive(nodes, opts.nodes), 15_000, () => stopRequested)) {
          summary.rejoined_ms = Date.now() - tr
          say(`${victim.init.name} is back with the same peer id and alive everywhere after ${summary.rejoined_ms} ms (it remembered its peers in SQLite)`)
        }
        await refresh()
        if (!tty && !opts.json && view !== null) process.stdout.write('\n' + renderStatus(view) + '\n\n')
      }
    }

    const left = opts.durationMs - (Date.now() - started)
    if (left > 0 && !stopRequested) {
      say(`running until ${Math.round(opts.durationMs / 1000)} s have passed (Ctrl-C stops earlier)`)
      await pause(left)
    }
  } catch (err) {
    say(`demo failed: ${(err as Error).message}`)
    process.stderr.write(`meshd demo: ${(err as Error).message}\n`)
  } finally {
    clearInterval(ticker)
    say('stopping every daemon (SIGTERM: drain, then exit 0)')
    const exits = await Promise.all(nodes.map(async (n) => n.stop()))
    summary.stopped_cleanly = exits.every((e) => e.code === 0 || (e.code === null && e.signal === null))
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigint)
    if (!opts.keep) rmSync(dir, { recursive: true, force: true })
  }

  if (opts.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
  else {
    const fmt = (ms: number | null): string => ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`
    if (tty) redraw()
    process.stdout.write([
      '',
      'Summary',
      `  daemons:                  ${summary.nodes}`,
      `  converged after the joins: ${fmt(summary.converged_ms)}`,
      `  kill -9 noticed by all:   ${fmt(summary.kill_detected_ms)}`,
      `  restart alive everywhere: ${fmt(summary.rejoined_ms)}`,
      `  stopped cleanly:          ${summary.stopped_cleanly ? 'yes' : 'no'}`,
      opts.keep ? `  configs and logs kept in ${dir}` : '',
      ''
    ].join('\n'))
  }
  return summary.stopped_cleanly && summary.converged_ms !== null ? 0 : 1
}

async function allAlive (nodes: MeshdProcess[], n: number): Promise<boolean> {
  for (const p of nodes) {
    if (!p.running) return false
    const s = await p.status()
    if (s.members.filter((m) => m.state === 'alive').length !== n) return false
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

/** Polls a condition every 100 ms until true, a deadline, or a stop. */
async function until (cond: () => Promise<boolean>, timeoutMs: number, stop: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && !stop()) {
    try { if (await cond()) return true } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}
