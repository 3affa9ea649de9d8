/**
 * bench/failover: how long the voters take to agree on a new leader after
 * the leader is killed (kill -9) or hangs (SIGSTOP), for 3, 5 and 9 voters,
 * medians over several runs; and how many elections happen when nothing
 * failed but the machine is saturated (busy loops on every core). Figures,
 * never pass/fail.
 *
 *   node_modules/.bin/node bench/failover.ts [--sizes 3,5,9] [--runs 5] [--busy-seconds 60]
 */
import { cpus } from 'node:os'
import { spawn, type ChildProcess } from 'node:child_process'
import { parseArgs } from 'node:util'
import type { MeshdProcess } from '../daemon/localmesh/meshd-process.ts'
import { LocalCluster, agreedLeader, statuses, type Agreement } from '../daemon/localmesh/cluster.ts'
import { median, quantile, fmtMs } from './stats.ts'

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '3,5,9' }, runs: { type: 'string', default: '5' }, 'busy-seconds': { type: 'string', default: '60' }, help: { type: 'boolean', short: 'h' } } })
if (values.help === true) {
  console.log('usage: node_modules/.bin/node bench/failover.ts [--sizes 3,5,9] [--runs 5] [--busy-seconds 60]   (--busy-seconds 0 skips the saturated-machine run)')
  process.exit(0)
}
const sizes = values.sizes.split(',').map(Number)
const runs = Number(values.runs)
const busySeconds = Number(values['busy-seconds'])

const clusters = new Set<LocalCluster>()
const hogs: ChildProcess[] = []
const cleanup = (): void => { for (const c of clusters) c.kill(); for (const h of hogs) h.kill('SIGKILL') }
process.on('exit', cleanup)
process.on('SIGINT', () => { process.exit(130) })

/** `n` voters in a chain, each joined only to the one before it. */
async function cluster (n: number): Promise<{ nodes: MeshdProcess[], c: LocalCluster }> {
  const c = new LocalCluster({ label: `bench-failover-${n}`, cluster: 'bench', logLevel: 'warn', logToFile: true })
  clusters.add(c)
  const nodes = await c.startAll(Array.from({ length: n }, (_, i) => ({ name: `v${i + 1}` })), { join: 'chain', joinTimeoutMs: 30_000 })
  return { nodes, c }
}

/** The leader all given nodes agree on (with a full voter set), or null. */
async function agreed (nodes: MeshdProcess[], voters: number): Promise<Agreement | null> {
  try {
    return agreedLeader(await statuses(nodes), voters)
  } catch {
    return null
  }
}

async function waitAgreed (c: LocalCluster, nodes: MeshdProcess[], voters: number, not: string | null, timeoutMs: number, intervalMs = 25): Promise<Agreement & { ms: number }> {
  const { value, ms } = await c.waitLeader(nodes, { voters, not, timeoutMs, intervalMs })
  return { ...value, ms }
}

interface Row { n: number, kill: number[], hang: number[] }
const rows: Row[] = []

for (const n of sizes) {
  process.stderr.write(`failover: ${n} voters\n`)
  const { nodes, c } = await cluster(n)
  const row: Row = { n, kill: [], hang: [] }
  try {
    let current = await waitAgreed(c, nodes, n, null, 60_000, 100)
    for (let r = 0; r < runs; r++) {
      for (const fault of ['kill', 'hang'] as const) {
        const victim = nodes.find((p) => p.info!.peer === current.leader)!
        const others = nodes.filter((p) => p !== victim)
        victim.signal(fault === 'kill' ? 'SIGKILL' : 'SIGSTOP')
        let after: Agreement & { ms: number }
        try {
          after = await waitAgreed(c, others, n, current.leader, 30_000)
        } finally {
          if (fault === 'hang') victim.signal('SIGCONT')
        }
        ;(fault === 'kill' ? row.kill : row.hang).push(after.ms)
        process.stderr.write(`  ${fault} ${r + 1}: ${fmtMs(after.ms)}\n`)
        if (fault === 'kill') { await victim.exited(); await victim.start() }
        current = await waitAgreed(c, nodes, n, null, 60_000, 100)
      }
    }
  } finally {
    await c.stop({ graceMs: 5000 })
  }
  rows.push(row)
}

console.log('\n### Leader failover (time until every survivor names the same new leader)\n')
console.log('| voters | kill -9: median | kill -9: max | SIGSTOP: median | SIGSTOP: max | runs |\n|---:|---:|---:|---:|---:|---:|')
for (const r of rows) console.log(`| ${r.n} | ${fmtMs(median(r.kill))} | ${fmtMs(Math.max(...r.kill))} | ${fmtMs(median(r.hang))} | ${fmtMs(Math.max(...r.hang))} | ${r.kill.length} |`)
const all = rows.flatMap((r) => [...r.kill, ...r.hang])
console.log(`\nall runs: p50 ${fmtMs(quantile(all, 0.5))}, p90 ${fmtMs(quantile(all, 0.9))}, max ${fmtMs(Math.max(...all))}`)

// False elections: a healthy cluster on a saturated machine.
if (busySeconds > 0) {
  process.stderr.write(`busy: 3 voters, ${cpus().length} busy loops, ${busySeconds} s\n`)
  const { nodes, c } = await cluster(3)
  try {
    const before = await waitAgreed(c, nodes, 3, null, 60_000, 100)
    for (let i = 0; i < cpus().length; i++) hogs.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }))
    const start = performance.now()
    let changes = 0
    let term = before.term
    let samples = 0
    let noLeader = 0
    while (performance.now() - start < busySeconds * 1000) {
      const a = await agreed(nodes, 3)
      samples++
      if (a === null) noLeader++
      else if (a.term !== term) { changes++; term = a.term }
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    for (const h of hogs) h.kill('SIGKILL')
    console.log(`\n### Under a CPU-saturating load (${cpus().length} busy loops on ${cpus().length} cores, ${busySeconds} s, 3 healthy voters)\n`)
    console.log(`term changes (elections): ${changes}; samples without an agreed leader: ${noLeader} of ${samples}; term ${before.term} → ${term}`)
  } finally {
    await c.stop({ graceMs: 5000 })
  }
}
