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
import { BenchCluster } from './cluster.ts'
import { median, quantile, fmtMs } from './stats.ts'

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '3,5,9' }, runs: { type: 'string', default: '5' }, 'busy-seconds': { type: 'string', default: '60' } } })
const sizes = values.sizes.split(',').map(Number)
const runs = Number(values.runs)
const busySeconds = Number(values['busy-seconds'])

const clusters = new Set<BenchCluster>()
const hogs: ChildProcess[] = []
const cleanup = (): void => { for (const c of clusters) c.kill(); for (const h of hogs) h.kill('SIGKILL') }
process.on('exit', cleanup)
process.on('SIGINT', () => { process.exit(130) })

async function cluster (n: number): Promise<{ nodes: MeshdProcess[], c: BenchCluster }> {
  const c = new BenchCluster(`failover-${n}`)
  clusters.add(c)
  const nodes: MeshdProcess[] = []
  for (let i = 0; i < n; i++) {
    const p = await c.start(`v${i + 1}`)
    if (i > 0) await p.call('join', { addrs: [nodes[i - 1]!.joinAddr] }, 30_000)
    nodes.push(p)
  }
  return { nodes, c }
}

/** The leader all given nodes agree on (with a full voter set), or null. */
async function agreed (nodes: MeshdProcess[], voters: number): Promise<{ leader: string, term: number } | null> {
  try {
    const ss = await Promise.all(nodes.map(async (n) => n.status()))
    const l = ss[0]!.leader
    if (l === null) return null
    if (!ss.every((s) => s.leader === l && ((s.election?.voters as string[] | undefined)?.length ?? 0) === voters)) return null
    return { leader: l, term: ss[0]!.term }
  } catch {
    return null
  }
}

async function waitAgreed (nodes: MeshdProcess[], voters: number, not: string | null, timeoutMs: number, intervalMs = 25): Promise<{ leader: string, term: number, ms: number }> {
  const start = performance.now()
  for (;;) {
    const a = await agreed(nodes, voters)
    if (a !== null && a.leader !== not) return { ...a, ms: performance.now() - start }
    if (performance.now() - start > timeoutMs) throw new Error(`no agreed leader within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

interface Row { n: number, kill: number[], hang: number[] }
const rows: Row[] = []

for (const n of sizes) {
  process.stderr.write(`failover: ${n} voters\n`)
  const { nodes, c } = await cluster(n)
  const row: Row = { n, kill: [], hang: [] }
  try {
    let current = await waitAgreed(nodes, n, null, 60_000, 100)
    for (let r = 0; r < runs; r++) {
      for (const fault of ['kill', 'hang'] as const) {
        const victim = nodes.find((p) => p.info!.peer === current.leader)!
        const others = nodes.filter((p) => p !== victim)
        victim.signal(fault === 'kill' ? 'SIGKILL' : 'SIGSTOP')
        let after: { leader: string, term: number, ms: number }
        try {
          after = await waitAgreed(others, n, current.leader, 30_000)
        } finally {
          if (fault === 'hang') victim.signal('SIGCONT')
        }
        ;(fault === 'kill' ? row.kill : row.hang).push(after.ms)
        process.stderr.write(`  ${fault} ${r + 1}: ${fmtMs(after.ms)}\n`)
        if (fault === 'kill') { await victim.exited(); await victim.start() }
        current = await waitAgreed(nodes, n, null, 60_000, 100)
      }
    }
  } finally {
    await c.stop()
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
    const before = await waitAgreed(nodes, 3, null, 60_000, 100)
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
    await c.stop()
  }
}
