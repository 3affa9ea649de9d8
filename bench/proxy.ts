/**
 * bench/proxy: what meshd's front door costs and what its routing buys,
 * against the same simulated replicas, in one run. Figures, never pass/fail.
 *
 * 1. Added latency: sequential small requests (1 token, no ttft) straight to a
 *    replica, through meshd to its local replica, through meshd to a replica
 *    over the mesh (/meshd/infer/1), and through nginx to the same replica.
 * 2. Forwarding throughput: autocannon, 64 connections, against the same four.
 * 3. One slow replica among three (tokens/s 10 against 40, 4 slots each):
 *    24 concurrent streaming clients through meshd, nginx least_conn and nginx
 *    round robin; time to first token and total time, p50 and p99, and the
 *    share of requests each replica served.
 *
 * 4. Many entry nodes, bursty arrivals, heavy tails (`--only multi`): three
 *    members, each an entry node with a 4-slot sim (two fast, one 3× slower),
 *    an open-loop replay of a seeded bursty workload (bench/traffic.ts) at
 *    several fractions of slot capacity, spread evenly over the three front
 *    doors; against nginx least_conn and round robin (one entry) in front of
 *    the same three sims, same arrivals. See multiRow() for the columns.
 *
 *   node_modules/.bin/node bench/proxy.ts [--requests 2000] [--seconds 10] [--slow-seconds 20]
 *     [--only overhead|slow|multi] [--multi-seconds 40] [--loads 0.5,0.8,1,1.2] [--seed 1]
 *     [--cv 3] [--arrivals gamma|onoff] [--trace azure.csv] [--fronts least_conn,round_robin]
 * nginx comes from Debian (`apt-get install nginx`); without it, its rows are skipped.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import autocannon from 'autocannon'
import type { MeshdProcess } from '../daemon/localmesh/meshd-process.ts'
import { LocalCluster } from '../daemon/localmesh/cluster.ts'
import { quantile, fmtMs } from './stats.ts'
import { generate, loadAzureTrace, windowAtLoad, rescaleToLoad, slotCapacity, arrivalRate, interArrivals, cv, type Arrival, type ReplicaSpeed } from './traffic.ts'
import { replay, startSampler, waitIdle, waitedWhileFree, summarize, type SamplerTargets, type QueueSample, type ReplaySummary } from './replay.ts'

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    'slow-seconds': { type: 'string', default: '20' },
    only: { type: 'string' },
    'multi-seconds': { type: 'string', default: '40' },
    loads: { type: 'string', default: '0.5,0.8,1,1.2' },
    seed: { type: 'string', default: '1' },
    cv: { type: 'string', default: '3' },
    arrivals: { type: 'string', default: 'gamma' },
    trace: { type: 'string' },
    /** Which fronts the multi scenario compares (meshd is always run). */
    fronts: { type: 'string', default: 'least_conn,round_robin' }
  }
})
const ONLY = values.only
const REQUESTS = Number(values.requests)
const SECONDS = Number(values.seconds)
const SLOW_SECONDS = Number(values['slow-seconds'])

const bench = new LocalCluster({ label: 'bench-proxy', cluster: 'bench', logLevel: 'warn', logToFile: true })
const dir = bench.dir
const children: ChildProcess[] = []
const cleanup = (): void => {
  bench.kill()
  for (const c of children) { try { process.kill(-c.pid!, 'SIGKILL') } catch {} }
}
process.on('exit', () => { cleanup(); rmSync(dir, { recursive: true, force: true }) })
process.on('SIGINT', () => { process.exit(130) })

async function freePort (): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => { resolve(p) }) })
  })
}

interface Sim { tps: number, slots: number, maxTokens: number, ttftMs: number }

async function daemon (name: string, cluster: string, replica: (Sim & { port: number }) | null): Promise<MeshdProcess> {
  const extra: Record<string, unknown> = { cluster, http: { listen: '127.0.0.1:0', max_queue: 4096 } }
  if (replica !== null) {
    extra.replica = {
      models: ['m'], slots: replica.slots, command: 'sim', url: `http://127.0.0.1:${replica.port}`,
      readiness_probe: { path: '/health', initial_delay_seconds: 60, period_seconds: 1 },
      sim: { ttft_ms: replica.ttftMs, tokens_per_second: replica.tps, max_tokens: replica.maxTokens }
    }
  }
  return bench.start({ name, config: extra })
}

async function waitReady (viewers: MeshdProcess[], replicas: number): Promise<void> {
  const deadline = Date.now() + 60_000
  for (const v of viewers) {
    for (;;) {
      const s = await v.status()
      if (s.members.filter((m) => m.state === 'alive' && m.replica?.ready === true).length >= replicas) break
      if (Date.now() > deadline) throw new Error(`${v.init.name}: replicas not ready`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

const BODY = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 })

/** Sequential requests over one keep-alive connection: per-request latency. */
async function latency (origin: string, n: number): Promise<number[]> {
  const pool = new Pool(origin, { connections: 1 })
  const out: number[] = []
  for (let i = 0; i < n + 200; i++) {
    const t0 = performance.now()
    const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: BODY })
    await r.body.text()
    if (r.statusCode !== 200) throw new Error(`${origin}: status ${r.statusCode}`)
    if (i >= 200) out.push(performance.now() - t0) // the first 200 warm up the JIT and connections
  }
  await pool.close()
  return out
}

async function throughput (origin: string, seconds: number): Promise<{ rps: number, p50: number, p99: number, errors: number }> {
  const r = await autocannon({ url: `${origin}/v1/chat/completions`, method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY, connections: 64, duration: seconds })
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx }
}

function nginxConf (port: number, upstreams: number[], policy: 'least_conn' | 'round_robin', tag: boolean): string {
  return `worker_processes 1;
pid ${dir}/nginx-${port}.pid;
error_log ${dir}/nginx-${port}.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream replicas {
    ${policy === 'least_conn' ? 'least_conn;' : ''}
    ${upstreams.map((p) => `server 127.0.0.1:${p};`).join('\n    ')}
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;${tag ? '\n      add_header X-Upstream-Addr $upstream_addr always;' : ''}
    }
  }
}
`
}

const haveNginx = spawnSync('nginx', ['-v']).status === 0
/** `tag`: each response names the replica that served it (X-Upstream-Addr), for scenarios that count shares. */
async function nginx (upstreams: number[], policy: 'least_conn' | 'round_robin', tag = false): Promise<{ origin: string, stop: () => void }> {
  const port = await freePort()
  const conf = join(dir, `nginx-${port}.conf`)
  writeFileSync(conf, nginxConf(port, upstreams, policy, tag))
  const child = spawn('nginx', ['-c', conf, '-g', 'daemon off;'], { detached: true, stdio: 'ignore' })
  children.push(child)
  const origin = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    try { await fetch(`${origin}/health`); break } catch { await new Promise((resolve) => setTimeout(resolve, 50)) }
  }
  return { origin, stop: () => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} } }
}

interface StreamStats { ttft: number[], total: number[], servedBy: Map<string, number>, failures: number }

/** `clients` loops of streamed requests for `seconds`: time to first token and total time. */
async function streams (origin: string, clients: number, seconds: number): Promise<StreamStats> {
  const stats: StreamStats = { ttft: [], total: [], servedBy: new Map(), failures: 0 }
  const pool = new Pool(origin, { connections: clients })
  const until = performance.now() + seconds * 1000
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'stream please' }], stream: true })
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < until) {
      const t0 = performance.now()
      try {
        const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body })
        let first = 0
        let text = ''
        for await (const chunk of r.body) {
          if (first === 0 && chunk.toString().includes('"content"')) first = performance.now()
          text += chunk.toString()
        }
        if (r.statusCode !== 200) { stats.failures++; continue }
        stats.ttft.push((first || performance.now()) - t0)
        stats.total.push(performance.now() - t0)
        // The sim names itself in each chunk's system_fingerprint only as "meshd-sim"; tell replicas apart by the served-by header or, behind nginx, by the port the sim reports in its id.
        const by = r.headers['x-meshd-served-by'] ?? /"id":"chatcmpl-([a-z0-9]+?)\d/.exec(text)?.[1] ?? '?'
        stats.servedBy.set(String(by), (stats.servedBy.get(String(by)) ?? 0) + 1)
      } catch {
        stats.failures++
      }
    }
  }))
  await pool.close()
  return stats
}

// ---- 1 and 2: overhead ------------------------------------------------------
if (ONLY === undefined || ONLY === 'overhead') {
const fast: Sim = { tps: 1_000_000, slots: 64, maxTokens: 1, ttftMs: 0 }
const pLocal = await freePort()
const pRemote = await freePort()
process.stderr.write('starting: A (replica, alone), B (replica) + E (routing only)\n')
const a = await daemon('A', 'local-only', { ...fast, port: pLocal })
const b = await daemon('B', 'mesh', { ...fast, port: pRemote })
const e = await daemon('E', 'mesh', null)
await e.call('join', { addrs: [b.joinAddr] })
await waitReady([a], 1)
await waitReady([e], 1)
const origins: Array<[string, string]> = [
  ['replica directly', `http://127.0.0.1:${pLocal}`],
  ['meshd → local replica', `http://${a.info!.http}`],
  ['meshd → replica over the mesh', `http://${e.info!.http}`]
]
let ng: { origin: string, stop: () => void } | null = null
if (haveNginx) {
  ng = await nginx([pLocal], 'round_robin')
  origins.push(['nginx → replica', ng.origin])
}
const lat = new Map<string, number[]>()
for (const [name, origin] of origins) {
  process.stderr.write(`latency: ${name}\n`)
  lat.set(name, await latency(origin, REQUESTS))
}
const base = lat.get('replica directly')!
console.log(`\n### Added latency (${REQUESTS} sequential requests, 1 token, keep-alive)\n`)
console.log('| path | p50 | p99 | added p50 | added p99 |\n|---|---:|---:|---:|---:|')
for (const [name, xs] of lat) {
  console.log(`| ${name} | ${fmtMs(quantile(xs, 0.5))} | ${fmtMs(quantile(xs, 0.99))} | ${name === 'replica directly' ? '–' : fmtMs(quantile(xs, 0.5) - quantile(base, 0.5))} | ${name === 'replica directly' ? '–' : fmtMs(quantile(xs, 0.99) - quantile(base, 0.99))} |`)
}
console.log(`\n### Forwarding throughput (autocannon, 64 connections, ${SECONDS} s)\n`)
console.log('| path | requests/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|')
for (const [name, origin] of origins) {
  process.stderr.write(`throughput: ${name}\n`)
  const r = await throughput(origin, SECONDS)
  console.log(`| ${name} | ${Math.round(r.rps)} | ${r.p50} ms | ${r.p99} ms | ${r.errors} |`)
}
ng?.stop()
for (const d of [a, b, e]) await d.stop()
}

// ---- 3: one slow replica ----------------------------------------------------
if (ONLY === undefined || ONLY === 'slow') {
const ports = [await freePort(), await freePort(), await freePort()]
const sims: Sim[] = [{ tps: 40, slots: 4, maxTokens: 32, ttftMs: 50 }, { tps: 40, slots: 4, maxTokens: 32, ttftMs: 50 }, { tps: 10, slots: 4, maxTokens: 32, ttftMs: 50 }]
process.stderr.write('starting: three members (one slow) + a routing-only entry\n')
const members = [await daemon('S1', 'slow', { ...sims[0]!, port: ports[0]! }), await daemon('S2', 'slow', { ...sims[1]!, port: ports[1]! }), await daemon('S3-slow', 'slow', { ...sims[2]!, port: ports[2]! })]
const entry = await daemon('E3', 'slow', null)
for (const m of members) await entry.call('join', { addrs: [m.joinAddr] })
await waitReady([entry], 3)
const names = new Map<string, string>(members.map((m) => [m.info!.peer, m.init.name]))
const runs: Array<[string, string]> = [['meshd (least_load, p2c)', `http://${entry.info!.http}`]]
const nginxes: Array<{ stop: () => void }> = []
if (haveNginx) {
  const lc = await nginx(ports, 'least_conn')
  const rr = await nginx(ports, 'round_robin')
  nginxes.push(lc, rr)
  runs.push(['nginx least_conn', lc.origin], ['nginx round robin', rr.origin])
}
console.log(`\n### One slow replica of three (24 streaming clients, ${SLOW_SECONDS} s each, 32 tokens at 40/40/10 tokens/s, 4 slots)\n`)
console.log('| front | requests | TTFT p50 | TTFT p99 | total p50 | total p99 | failures | share served by the slow replica |\n|---|---:|---:|---:|---:|---:|---:|---:|')
for (const [name, origin] of runs) {
  process.stderr.write(`slow replica: ${name}\n`)
  const s = await streams(origin, 24, SLOW_SECONDS)
  const slowServed = name.startsWith('meshd')
    ? (s.servedBy.get(members[2]!.info!.peer) ?? 0)
    : NaN
  const n = s.total.length
  const share = Number.isNaN(slowServed) ? estimateSlowShare(s) : slowServed / Math.max(1, n)
  console.log(`| ${name} | ${n} | ${fmtMs(quantile(s.ttft, 0.5))} | ${fmtMs(quantile(s.ttft, 0.99))} | ${fmtMs(quantile(s.total, 0.5))} | ${fmtMs(quantile(s.total, 0.99))} | ${s.failures} | ${Number.isNaN(share) ? 'n/a' : `${(share * 100).toFixed(0)}%`} |`)
  void names
}
for (const n of nginxes) n.stop()
}

/** Behind nginx there is no served-by header: requests slower than 2× the fast replicas' time were the slow one's. */
function estimateSlowShare (s: StreamStats): number {
  const fastTotal = (50 + 32 * 25) // ms: ttft + 32 tokens at 40/s
  return s.total.filter((x) => x > fastTotal * 2).length / Math.max(1, s.total.length)
}
// ---- 4: many entry nodes, bursty arrivals, heavy tails -----------------------
const MULTI_FAST: Sim = { tps: 40, slots: 4, maxTokens: 400, ttftMs: 50 }
const MULTI_SLOW: Sim = { tps: 40 / 3, slots: 4, maxTokens: 400, ttftMs: 150 }
const MULTI_SIMS: Sim[] = [MULTI_FAST, MULTI_FAST, MULTI_SLOW]
const MULTI_NAMES = ['M1-fast', 'M2-fast', 'M3-slow']
const SLOW = 2 // index of the slow replica in MULTI_SIMS
const MULTI_SPEEDS: ReplicaSpeed[] = MULTI_SIMS.map((s) => ({ slots: s.slots, ttft_ms: s.ttftMs, tokens_per_second: s.tps }))
/** A request not done after this long is abandoned (failed): keeps every run bounded in time. */
const MULTI_REQUEST_TIMEOUT_MS = 300_000

interface Front {
  name: string
  /** Request i goes to origins[i mod n]. */
  origins: string[]
  servedBy: (h: Record<string, string | string[] | undefined>) => number | null
  targets: SamplerTargets
}

/** The arrivals of each load level: one base trace (same seed), rescaled, so levels differ only in speed. */
function multiWorkloads (seconds: number, loads: number[]): Array<{ load: number, trace: Arrival[] }> {
  let base: Arrival[]
  if (values.trace !== undefined) {
    base = loadAzureTrace(values.trace)
  } else {
    const opts = { seed: Number(values.seed), cv: Number(values.cv), mode: values.arrivals === 'onoff' ? 'onoff' as const : 'gamma' as const }
    // Enough requests for the highest load, with room for the capacity estimate to move.
    const capacity = slotCapacity(MULTI_SPEEDS, generate({ ...opts, count: 2000 }))
    base = generate({ ...opts, count: Math.ceil(seconds * Math.max(...loads) * capacity * 1.5) + 100 })
  }
  return loads.map((load) => {
    try {
      return { load, trace: windowAtLoad(base, MULTI_SPEEDS, load, seconds) }
    } catch (err) {
      // A real trace shorter than the window: all of it, at that load, however long that is.
      process.stderr.write(`${(err as Error).message}; replaying all of it\n`)
      return { load, trace: rescaleToLoad(base, MULTI_SPEEDS, load) }
    }
  })
}

function printWorkloads (ws: Array<{ load: number, trace: Arrival[] }>): void {
  console.log('| load | requests | offered | slot capacity | arrivals over | inter-arrival CV | output tokens p50 / p90 / p99 | prompt tokens p50 |\n|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const { load, trace } of ws) {
    const outs = trace.map((a) => a.output_tokens)
    console.log(`| ${load * 100}% | ${trace.length} | ${arrivalRate(trace).toFixed(2)} req/s | ${slotCapacity(MULTI_SPEEDS, trace).toFixed(2)} req/s | ${fmtMs(trace[trace.length - 1]!.at_ms)} | ${cv(interArrivals(trace)).toFixed(2)} | ${[0.5, 0.9, 0.99].map((q) => Math.round(quantile(outs, q))).join(' / ')} | ${Math.round(quantile(trace.map((a) => a.prompt_tokens), 0.5))} |`)
  }
}

const fmt3 = (xs: number[]): string => xs.map((x) => Number.isNaN(x) ? '–' : fmtMs(x)).join(' / ')

/**
 * One row: requests; failed (every request that did not stream all its
 * tokens: non-200, errors, broken streams, 429s included); of those, 429s
 * and how many carried Retry-After; TTFT and end-to-end p50/p90/p99 of the
 * successful ones; TTFT p50 at each entry node; the slow replica's share of
 * successful requests; drain (last request sent → last one finished); mean
 * busy slots of the two fast replicas; and the 250 ms samples in which a
 * request waited (entry queue or engine queue) while some replica had a
 * free slot.
 */
function multiRow (load: number, front: Front, r: ReplaySummary, samples: QueueSample[]): string {
  const slots = MULTI_SIMS.map((s) => s.slots)
  const fastBusy = samples.length === 0 ? NaN : samples.reduce((a, s) => a + s.running[0]! + s.running[1]!, 0) / samples.length
  const waited = samples.filter((s) => waitedWhileFree(s, slots)).length
  return `| ${load * 100}% | ${front.name} | ${r.requests} | ${r.failed} | ${r.status429} (${r.status429WithRetryAfter} with Retry-After) | ${fmt3(r.ttft)} (${fmtMs(r.ttftMean)}) | ${fmt3(r.total)} | ${fmt3(r.entryTtftP50)} | ${Number.isNaN(r.share) ? 'n/a' : `${(r.share * 100).toFixed(0)}%`} | ${fmtMs(r.drainMs)} | ${fastBusy.toFixed(1)} of ${slots[0]! + slots[1]!} | ${waited} of ${samples.length} |`
}

/** The replica a response names; `tag` reads the front's own header into a replica index. */
function servedByHeader (name: string, tag: (v: string) => number | undefined): Front['servedBy'] {
  return (h) => {
    const v = h[name]
    const s = Array.isArray(v) ? v[0] : v
    return s === undefined ? null : (tag(s) ?? null)
  }
}

async function multiScenario (): Promise<void> {
  const seconds = Number(values['multi-seconds'])
  const loads = values.loads.split(',').map(Number)
  const workloads = multiWorkloads(seconds, loads)
  const ports = [await freePort(), await freePort(), await freePort()]
  process.stderr.write('starting: three members, each an entry node with a replica (one 3× slower)\n')
  const members: MeshdProcess[] = []
  for (const [i, sim] of MULTI_SIMS.entries()) members.push(await daemon(MULTI_NAMES[i]!, 'multi', { ...sim, port: ports[i]! }))
  for (const m of members.slice(1)) await m.call('join', { addrs: [members[0]!.joinAddr] })
  await waitReady(members, 3)
  const replicas = ports.map((p) => ({ url: `http://127.0.0.1:${p}`, slots: 4 }))
  const peers = new Map(members.map((m, i) => [m.info!.peer, i]))
  const fronts: Front[] = [{
    name: 'meshd (3 entry nodes)',
    origins: members.map((m) => `http://${m.info!.http}`),
    servedBy: servedByHeader('x-meshd-served-by', (peer) => peers.get(peer)),
    targets: { replicas, entries: members.map((m) => `http://${m.info!.http}`) }
  }]
  const nginxes: Array<{ stop: () => void }> = []
  if (haveNginx) {
    // $upstream_addr lists every upstream tried ("a, b" after a retry): the last one served.
    const byAddr = servedByHeader('x-upstream-addr', (addr) => { const i = ports.indexOf(Number(addr.split(', ').at(-1)!.split(':').at(-1))); return i < 0 ? undefined : i })
    const wanted = new Set(values.fronts.split(','))
    for (const [policy, label] of [['least_conn', 'nginx least_conn (1 entry)'], ['round_robin', 'nginx round robin (1 entry)']] as const) {
      if (!wanted.has(policy)) continue
      const ng = await nginx(ports, policy, true)
      nginxes.push(ng)
      fronts.push({ name: label, origins: [ng.origin], servedBy: byAddr, targets: { replicas, entries: [] } })
    }
  }
  console.log(`\n### Many entry nodes, bursty arrivals, heavy tails (${seconds} s of arrivals per run; sims: 4 slots each, M1 and M2 at 40 tokens/s and 50 ms ttft, M3-slow at ${MULTI_SLOW.tps.toFixed(1)} tokens/s and 150 ms ttft)\n`)
  console.log(`Open loop, streamed chat completions, request i to entry i mod 3 (meshd) or to the one nginx. ${values.trace !== undefined ? `Arrivals and lengths from ${values.trace}` : `Arrivals: ${values.arrivals === 'onoff' ? 'on/off bursts' : `Gamma inter-arrivals, CV ${values.cv}`}, seed ${values.seed}; output tokens lognormal (median 20, sigma 1, clipped to [1, 400])`}, rescaled to each load (fraction of slot capacity).\n`)
  printWorkloads(workloads)
  console.log('\n| load | front | requests | failed | of which 429 | TTFT p50 / p90 / p99 (mean) | end-to-end p50 / p90 / p99 | TTFT p50 at each entry (M1 / M2 / M3-slow) | served by the slow replica | drain | busy slots, fast replicas (mean) | waited while a slot was free |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  const failures: string[] = []
  for (const { load, trace } of workloads) {
    for (const front of fronts) {
      process.stderr.write(`multi: ${front.name}, load ${load}, ${trace.length} requests\n`)
      const sampler = startSampler(front.targets, 250)
      const outs = await replay(trace, front.origins, { servedBy: front.servedBy, model: 'm', timeoutMs: MULTI_REQUEST_TIMEOUT_MS })
      const samples = sampler.stop()
      const r = summarize(outs, front.origins.length, SLOW)
      console.log(multiRow(load, front, r, samples))
      process.stderr.write(`  client send lag p99 ${fmtMs(r.sendLagP99)}\n`)
      for (const [why, n] of r.errors) failures.push(`- ${load * 100}%, ${front.name}: ${n} × ${why}`)
      const idle = await waitIdle(front.targets, 180_000)
      process.stderr.write(`  idle after ${fmtMs(idle)}\n`)
    }
  }
  if (failures.length > 0) console.log(`\nFailures by cause:\n\n${failures.join('\n')}`)
  for (const n of nginxes) n.stop()
  for (const m of members) await m.stop()
}

if (ONLY === undefined || ONLY === 'multi') await multiScenario()

await bench.stop({ graceMs: 5000 })
