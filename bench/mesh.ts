/**
 * bench/mesh: N real daemons on this machine (N = 5, 15, 30 by default).
 * Figures, never pass/fail:
 *   - convergence: time from the last join (a chain: each joined only to the
 *     one before it) until every daemon lists all N alive;
 *   - detection: time from kill -9 / SIGSTOP of one daemon until no other
 *     lists it alive (medians over several victims);
 *   - at rest: CPU % and RSS per daemon, heartbeat payload bytes, and bytes
 *     on the wire per daemon per second (TCP bytes_sent from `ss`, so gossip
 *     duplicates, control messages, pnet/noise/yamux framing all count).
 *
 *   node_modules/.bin/node bench/mesh.ts [--sizes 5,15,30] [--rounds 3] [--rest-seconds 10] [--json out.json]
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import type { MeshdProcess } from '../daemon/localmesh/meshd-process.ts'
import { LocalCluster, aliveOn, notAliveOn } from '../daemon/localmesh/cluster.ts'
import { waitFor } from '../daemon/localmesh/poll.ts'
import { median, pct, fmtMs } from './stats.ts'

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5,15,30' },
    rounds: { type: 'string', default: '3' },
    'rest-seconds': { type: 'string', default: '10' },
    json: { type: 'string' }
  }
})
const sizes = values.sizes.split(',').map(Number)
const rounds = Number(values.rounds)
const restSeconds = Number(values['rest-seconds'])

const clusters = new Set<LocalCluster>()
const cleanup = (): void => { for (const c of clusters) c.kill() }
process.on('SIGINT', () => { cleanup(); process.exit(130) })
process.on('exit', cleanup)

interface SizeResult {
  n: number
  converge_ms: number
  kill_detect_ms: number[]
  hang_detect_ms: number[]
  cpu_pct_per_daemon: number
  rss_mb_per_daemon: number
  heartbeat_payload_bytes: number
  wire_bytes_per_s_per_daemon: number
}

function procStat (pid: number): { cpuTicks: number, rssKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuTicks = Number(fields[11]) + Number(fields[12])
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])
  return { cpuTicks, rssKb }
}

/** TCP bytes sent per pid, from the kernel's per-socket counters. */
function bytesSentByPid (): Map<number, number> {
  const out = new Map<number, number>()
  const text = execFileSync('ss', ['-tinpH'], { encoding: 'utf8', maxBuffer: 64 << 20 })
  let pid: number | null = null
  for (const line of text.split('\n')) {
    const p = /pid=(\d+)/.exec(line)
    if (p !== null) { pid = Number(p[1]); continue }
    const b = /bytes_sent:(\d+)/.exec(line)
    if (b !== null && pid !== null) out.set(pid, (out.get(pid) ?? 0) + Number(b[1]))
  }
  return out
}

async function runSize (n: number): Promise<SizeResult> {
  const c = new LocalCluster({ label: `bench-mesh-${n}`, cluster: 'bench', logLevel: 'warn', logToFile: true })
  clusters.add(c)
  try {
    const nodes = await c.startAll(Array.from({ length: n }, (_, i) => ({ name: `b${i + 1}` })))
    await c.join(nodes, 'chain', 30_000)
    const { ms: converge } = await c.waitAllAlive(nodes, { timeoutMs: 300_000, intervalMs: 100 })
    process.stderr.write(`  n=${n}: converged in ${fmtMs(converge)}\n`)

    // At rest: let the mesh settle, then measure over restSeconds.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    const before = new Map(nodes.map((p) => [p.pid!, procStat(p.pid!)]))
    const sentBefore = bytesSentByPid()
    const hbBefore = await Promise.all(nodes.map(async (p) => heartbeatBytes(p)))
    const t0 = performance.now()
    await new Promise((resolve) => setTimeout(resolve, restSeconds * 1000))
    const elapsed = (performance.now() - t0) / 1000
    const sentAfter = bytesSentByPid()
    const hbAfter = await Promise.all(nodes.map(async (p) => heartbeatBytes(p)))
    const cpu: number[] = []
    const rss: number[] = []
    const wire: number[] = []
    for (const p of nodes) {
      const a = procStat(p.pid!)
      const b = before.get(p.pid!)!
      cpu.push(((a.cpuTicks - b.cpuTicks) / hz) / elapsed * 100)
      rss.push(a.rssKb / 1024)
      wire.push(((sentAfter.get(p.pid!) ?? 0) - (sentBefore.get(p.pid!) ?? 0)) / elapsed)
    }
    const payload = hbAfter.map((v, i) => (v.bytes - hbBefore[i]!.bytes) / Math.max(1, v.count - hbBefore[i]!.count))

    // Detection: kill -9 some daemons, SIGSTOP others (distinct victims, never daemon 0, the viewer of last resort).
    const killDetect: number[] = []
    const hangDetect: number[] = []
    for (let r = 0; r < rounds; r++) {
      try {
        await detectionRound(r)
      } catch (err) {
        // An overloaded host (many daemons per core) may not settle in time:
        // record the round as missing rather than lose the other figures.
        process.stderr.write(`  n=${n}: detection round ${r + 1} did not settle: ${(err as Error).message}\n`)
      }
    }
    async function detectionRound (r: number): Promise<void> {
      const victim = nodes[1 + (r * 2) % (n - 1)]!
      const watchers = nodes.filter((p) => p !== victim && p.running)
      victim.signal('SIGKILL')
      killDetect.push((await waitFor(() => notAliveOn(watchers, victim.info!.peer), { timeoutMs: 30_000, intervalMs: 20, what: `${victim.init.name} not alive anywhere` })).ms)
      await victim.exited()
      await victim.start()
      await waitFor(() => aliveOn(watchers, [victim.info!.peer]), { timeoutMs: 60_000, intervalMs: 100, what: `${victim.init.name} alive again everywhere` })

      const hung = nodes[1 + (r * 2 + 1) % (n - 1)]!
      const hw = nodes.filter((p) => p !== hung)
      hung.signal('SIGSTOP')
      try {
        hangDetect.push((await waitFor(() => notAliveOn(hw, hung.info!.peer), { timeoutMs: 30_000, intervalMs: 50, what: `${hung.init.name} not alive anywhere` })).ms)
      } finally {
        hung.signal('SIGCONT')
      }
      await waitFor(() => aliveOn(hw, [hung.info!.peer]), { timeoutMs: 60_000, intervalMs: 100, what: `${hung.init.name} alive again everywhere` })
    }
    process.stderr.write(`  n=${n}: kill ${killDetect.map(fmtMs).join(', ')}; hang ${hangDetect.map(fmtMs).join(', ')}\n`)
    return {
      n,
      converge_ms: converge,
      kill_detect_ms: killDetect,
      hang_detect_ms: hangDetect,
      cpu_pct_per_daemon: median(cpu),
      rss_mb_per_daemon: median(rss),
      heartbeat_payload_bytes: median(payload),
      wire_bytes_per_s_per_daemon: median(wire)
    }
  } finally {
    await c.stop({ graceMs: 5000 })
  }
}

async function heartbeatBytes (p: MeshdProcess): Promise<{ bytes: number, count: number }> {
  const text = await (await fetch(`http://${p.info!.http}/metrics`)).text()
  const get = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0)
  return { bytes: get('meshd_heartbeat_bytes_sent_total'), count: get('meshd_heartbeats_sent_total') }
}

const results: SizeResult[] = []
process.stderr.write(`bench/mesh: sizes ${sizes.join(', ')}, ${rounds} detection rounds each, ${restSeconds} s at rest\n`)
for (const n of sizes) results.push(await runSize(n))

console.log('\n| daemons | converge after last join | kill -9 detected (median) | SIGSTOP detected (median) | CPU per daemon at rest | RSS per daemon | heartbeat payload | wire bytes/s per daemon |')
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const r of results) {
  console.log(`| ${r.n} | ${fmtMs(r.converge_ms)} | ${fmtMs(median(r.kill_detect_ms))} | ${fmtMs(median(r.hang_detect_ms))} | ${pct(r.cpu_pct_per_daemon)} | ${r.rss_mb_per_daemon.toFixed(0)} MB | ${r.heartbeat_payload_bytes.toFixed(0)} B | ${(r.wire_bytes_per_s_per_daemon / 1024).toFixed(1)} KiB/s |`)
}
// Wire bytes per daemon grow with the number of members it hears from:
// fit bytes/s ≈ a·n + b by least squares over the measured sizes and project.
if (results.length >= 2) {
  const xs = results.map((r) => r.n)
  const ys = results.map((r) => r.wire_bytes_per_s_per_daemon)
  const mx = xs.reduce((a, b) => a + b) / xs.length
  const my = ys.reduce((a, b) => a + b) / ys.length
  const a = xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0)
  const b = my - a * mx
  console.log(`\nfit: wire bytes/s per daemon ≈ ${a.toFixed(0)}·n + ${b.toFixed(0)} (≈ ${(a / median(results.map((r) => r.heartbeat_payload_bytes))).toFixed(1)}× the payload per member per second)`)
  for (const n of [300, 3000]) console.log(`projection n=${n}: ${((a * n + b) / 1024).toFixed(0)} KiB/s sent per daemon (and about as much received)`)
}
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(results, null, 2))
