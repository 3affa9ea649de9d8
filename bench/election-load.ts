/**
 * bench/election-load: false elections on a loaded host, then real failover
 * (issue 11 item 6). Three voter daemons (real processes, each with a sim
 * replica) in a chain; busy loops plus client traffic load the machine to
 * about 4× its cores (load average) for --seconds; every 250 ms each voter's
 * status is read and every term change and leader change is counted (none
 * is warranted: nothing failed). Then the leader is killed (kill -9), under
 * the same load, and the time until both survivors name the same new leader
 * is measured. Figures, never pass/fail.
 *
 *   node_modules/.bin/node bench/election-load.ts [--seconds 300] [--load 4] [--clients 8] [--stall-ms 0 --stall-every 10]
 *
 * --stall-ms N stalls the acting leader's process (SIGSTOP, then SIGCONT
 * after N ms) every --stall-every seconds: what a host at load 10 or a long
 * GC pause does to one process, made repeatable. A stall shorter than the
 * election timeout (1.5 s) is a busy leader, not a failed one: no election
 * is warranted.
 *
 * The machine may be shared: run a before/after pair back to back, with the
 * same --seconds, and compare them, not runs from different sessions.
 */
import { cpus, loadavg } from 'node:os'
import { spawn, type ChildProcess } from 'node:child_process'
import { parseArgs } from 'node:util'
import OpenAI from 'openai'
import { LocalCluster, statuses } from '../daemon/localmesh/cluster.ts'
import { fmtMs } from './stats.ts'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '300' }, load: { type: 'string', default: '4' }, clients: { type: 'string', default: '8' }, 'stall-ms': { type: 'string', default: '0' }, 'stall-every': { type: 'string', default: '10' }, help: { type: 'boolean', short: 'h' } } })
if (values.help === true) {
  console.log('usage: node_modules/.bin/node bench/election-load.ts [--seconds 300] [--load 4] [--clients 8] [--stall-ms 0 --stall-every 10]')
  process.exit(0)
}
const seconds = Number(values.seconds)
const loadFactor = Number(values.load)
const clients = Number(values.clients)
const stallMs = Number(values['stall-ms'])
const stallEvery = Number(values['stall-every'])
for (const [k, v] of [['--seconds', seconds], ['--load', loadFactor], ['--clients', clients], ['--stall-every', stallEvery]] as const) {
  if (!(Number.isFinite(v) && v > 0)) { console.error(`${k} must be a positive number`); process.exit(2) }
}
if (!(Number.isFinite(stallMs) && stallMs >= 0)) { console.error('--stall-ms must be a number >= 0'); process.exit(2) }

const MODEL = 'llama3'
const cores = cpus().length
const hogs: ChildProcess[] = []
const c = new LocalCluster({ label: 'bench-election-load', cluster: 'bench', logLevel: 'warn', logToFile: true })
const cleanup = (): void => { c.kill(); for (const h of hogs) h.kill('SIGKILL') }
process.on('exit', cleanup)
process.on('SIGINT', () => { process.exit(130) })

const replica = { models: [MODEL], slots: 4, command: 'sim', sim: { ttft_ms: 60, tokens_per_second: 200, max_tokens: 16 } }
const nodes = await c.startAll(['v1', 'v2', 'v3'].map((name) => ({ name, config: { replica } })), { join: 'chain', joinTimeoutMs: 30_000 })
const first = await c.waitLeader(nodes, { voters: 3, timeoutMs: 60_000 })
process.stderr.write(`leader ${first.value.leader.slice(-8)} in term ${first.value.term}; loading the host\n`)

// Client traffic: each client asks a random voter's front door, one request after another.
let stop = false
let requests = 0
let failures = 0
const traffic = Array.from({ length: clients }, async (_, i) => {
  while (!stop) {
    const n = nodes[(i + requests) % nodes.length]!
    if (!n.running) { await new Promise((resolve) => setTimeout(resolve, 50)); continue }
    const client = new OpenAI({ baseURL: `http://${n.info!.http}/v1`, apiKey: 'none', maxRetries: 0, timeout: 10_000 })
    try {
      await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 })
      requests++
    } catch {
      failures++
    }
  }
})
// Busy loops: the daemons and clients use some CPU; the loops bring the run queue to ~load × cores.
for (let i = 0; i < Math.max(1, Math.round(loadFactor * cores) - 3); i++) hogs.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }))

// Stalls of the acting leader (when asked for): SIGSTOP, SIGCONT after stallMs.
let stalls = 0
let stallsDone = false
const stalling = (async () => {
  if (stallMs === 0) return
  while (!stallsDone) {
    await new Promise((resolve) => setTimeout(resolve, stallEvery * 1000))
    if (stallsDone) return
    const ss = await statuses(nodes).catch(() => null)
    const leader = ss?.[0]?.leader
    const victim = nodes.find((n) => n.running && n.info?.peer === leader)
    if (victim === undefined) continue
    victim.signal('SIGSTOP')
    stalls++
    await new Promise((resolve) => setTimeout(resolve, stallMs)) // the stall itself is the stimulus
    victim.signal('SIGCONT')
  }
})()

interface Seen { term: number, leader: string | null }
const last = new Map<string, Seen>()
let termChanges = 0
let leaderChanges = 0
let samples = 0
let noAgreement = 0
const loads: number[] = []
const start = performance.now()
let nextLoad = start + 10_000
while (performance.now() - start < seconds * 1000) {
  const t0 = performance.now()
  try {
    const ss = await statuses(nodes)
    samples++
    const leaders = new Set(ss.map((s) => s.leader))
    if (leaders.size !== 1 || ss[0]!.leader === null) noAgreement++
    for (const [i, s] of ss.entries()) {
      const id = nodes[i]!.init.name
      const prev = last.get(id)
      if (prev !== undefined && s.term > prev.term) termChanges++
      if (prev !== undefined && s.leader !== null && prev.leader !== null && s.leader !== prev.leader) leaderChanges++
      last.set(id, { term: s.term, leader: s.leader ?? prev?.leader ?? null })
    }
  } catch { /* a status call timed out under load: the next sample counts */ }
  if (performance.now() >= nextLoad) { loads.push(loadavg()[0]!); nextLoad += 10_000 }
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 250 - (performance.now() - t0))))
}

stallsDone = true
await stalling

// Real failover under the same load.
const before = await c.waitLeader(nodes, { voters: 3, timeoutMs: 30_000 })
const victim = nodes.find((p) => p.info!.peer === before.value.leader)!
const survivors = nodes.filter((p) => p !== victim)
victim.signal('SIGKILL')
const killedAt = performance.now()
let failoverMs: number | null = null
try {
  await c.waitLeader(survivors, { voters: 3, not: before.value.leader, timeoutMs: 30_000, intervalMs: 25 })
  failoverMs = performance.now() - killedAt
} catch { /* reported as none */ }
stop = true
for (const h of hogs) h.kill('SIGKILL')
await Promise.all(traffic)
await c.stop({ graceMs: 5000 })

// Each voter sees each change, so a change seen by all three counts three times: report per voter.
const avgLoad = loads.length > 0 ? loads.reduce((a, b) => a + b, 0) / loads.length : loadavg()[0]!
console.log(`\n### Elections on a loaded host (${seconds} s, ${cores} cores, ${hogs.length} busy loops + ${clients} clients, 3 voters${stallMs > 0 ? `, the leader stalled ${stallMs} ms every ${stallEvery} s: ${stalls} stalls` : ''})\n`)
console.log(`load average (1 min) during the run: mean ${avgLoad.toFixed(1)} (${(avgLoad / cores).toFixed(1)}× the cores), max ${Math.max(...loads, 0).toFixed(1)}`)
console.log(`term changes seen (summed over the 3 voters): ${termChanges}; leader changes seen: ${leaderChanges}; samples without one agreed leader: ${noAgreement} of ${samples}`)
console.log(`final term ${before.value.term} (started at ${first.value.term}): ${before.value.term - first.value.term} elections with no failure`)
console.log(`client requests: ${requests} ok, ${failures} failed`)
console.log(`kill -9 of the leader under load: survivors agree on a new leader after ${failoverMs === null ? 'none within 30 s' : fmtMs(failoverMs)}`)
