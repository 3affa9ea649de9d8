/**
 * bench/hostile: how long the worst requests we know (bench/hostile-kinds.ts)
 * stall a meshd daemon's main thread, the one that also runs its membership
 * heartbeats and election timers. Figures, never pass/fail.
 *
 * One daemon with a sim replica. For each kind alone, then all kinds
 * together with 300 slowloris connections: `--workers` connections send that
 * kind back to back for `--seconds`, while /health is asked every 100 ms from
 * here. Printed: requests answered, the daemon's own event-loop delay over
 * the run (max and p99, from perf_hooks.monitorEventLoopDelay via its
 * /metrics: nodejs_eventloop_lag_*_seconds, reset at each scrape), and the
 * /health round trip seen from outside (p50, max).
 *
 *   node_modules/.bin/node bench/hostile.ts [--seconds 8] [--workers 4] [--only deep,keys]
 */
import { rmSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { LocalCluster } from '../daemon/localmesh/cluster.ts'
import { waitFor } from '../daemon/localmesh/poll.ts'
import { sumMetric } from '../test/helpers/daemon.ts'
import { quantile, fmtMs } from './stats.ts'
import { KINDS, flood, slowConnections, type Kind } from './hostile-kinds.ts'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    workers: { type: 'string', default: '4' },
    only: { type: 'string' }
  }
})
const SECONDS = Number(values.seconds)
const WORKERS = Number(values.workers)
const kinds = values.only === undefined ? [...KINDS] : values.only.split(',') as Kind[]

const bench = new LocalCluster({ label: 'bench-hostile', cluster: 'bench', logLevel: 'warn', logToFile: true })
process.on('exit', () => { bench.kill(); rmSync(bench.dir, { recursive: true, force: true }) })
process.on('SIGINT', () => { process.exit(130) })

const d = await bench.start({
  name: 'target',
  config: {
    http: { listen: '127.0.0.1:0' },
    replica: { models: ['sim'], slots: 4, command: 'sim', readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1, timeout_seconds: 2 } }
  }
})
const url = `http://${d.info!.http}`
const port = Number(d.info!.http.split(':').pop())
await waitFor(async () => (await fetch(`${url}/health`)).status === 200, { timeoutMs: 30_000, what: 'the daemon healthy' })

async function lag (): Promise<{ max: number, p99: number }> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return { max: sumMetric(text, 'nodejs_eventloop_lag_max_seconds') * 1000, p99: sumMetric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000 }
}

async function run (label: string, what: readonly Kind[], slowloris: number): Promise<void> {
  await lag() // resets the daemon's delay histogram
  const stop = new AbortController()
  const closeSlow = slowloris > 0 ? slowConnections(port, slowloris) : () => {}
  const counts = what.length > 0 ? flood(port, what, WORKERS, stop.signal) : Promise.resolve(new Map<string, number>())
  const rtt: number[] = []
  let failed = 0
  const ends = performance.now() + SECONDS * 1000
  while (performance.now() < ends) {
    const t0 = performance.now()
    const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) }).then(async (r) => { await r.arrayBuffer(); return r.status === 200 }, () => false)
    rtt.push(performance.now() - t0)
    if (!ok) failed++
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 100 - (performance.now() - t0))))
  }
  const l = await lag()
  stop.abort()
  closeSlow()
  const seen = await counts
  const answered = [...seen.values()].reduce((a, b) => a + b, 0)
  const statuses = [...new Set([...seen.keys()].map((k) => k.split(' ').slice(1).join(' ').replace('HTTP/1.1 ', '')))].join(' ')
  rtt.sort((a, b) => a - b)
  console.log(`| ${label} | ${answered} (${statuses || '—'}) | ${fmtMs(l.max)} | ${fmtMs(l.p99)} | ${fmtMs(quantile(rtt, 0.5))} | ${fmtMs(rtt[rtt.length - 1]!)} | ${failed} |`)
}

console.log(`${SECONDS} s per row, ${WORKERS} connections sending back to back; /health every 100 ms\n`)
console.log('| kind | requests answered (statuses) | loop delay max | loop delay p99 | /health p50 | /health max | /health failed |')
console.log('|---|---:|---:|---:|---:|---:|---:|')
await run('nothing (baseline)', [], 0)
for (const k of kinds) await run(k, [k], 0)
await run('slowloris ×300', [], 300)
await run('all kinds + slowloris ×300', kinds, 300)
process.exit(0)
