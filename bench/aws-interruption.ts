/**
 * bench/aws-interruption: a spot interruption under streaming load, with the
 * notice read (meshd) beside the same reclaim without one (what a system
 * that reads no notices sees — SkyServe notices a preemption after the fact
 * — the node simply goes at its time), side by side in one run, alternating.
 *
 * Each run: the fake EC2 (test/helpers/fake-ec2, instances as namespaces
 * running their user data and a real bundle), three voters keeping two spot
 * burst nodes (burst.mode auto, min_cloud_instances 2: a lost one is
 * replaced either way, as SkyServe's controller replaces a preempted
 * replica), streaming chat completions through every voter's front door
 * (official openai client; 2.4 s streams), then one burst instance interrupted `--notice`
 * seconds ahead (EC2 gives 120 s; compressed here). Printed per arm, medians
 * over runs: notice → replacement ready, notice → the instance gone,
 * requests failed of those served. Needs root (namespaces), curl.
 *
 *   node_modules/.bin/node bench/aws-interruption.ts [--runs 3] [--notice 20]
 */
import { parseArgs } from 'node:util'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { netnsMachinesAvailable } from '../test/helpers/fake-ec2/index.ts'
import { interruptionConfig, interruptUnderLoad, startAwsMesh, type InterruptionRun } from '../test/helpers/aws-mesh.ts'
import { waitFor } from '../daemon/localmesh/poll.ts'
import { testBundle } from '../test/helpers/test-bundle.ts'
import { median, fmtMs } from './stats.ts'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, notice: { type: 'string', default: '20' }, help: { type: 'boolean', short: 'h' } } })
if (values.help === true) {
  console.log('usage: node_modules/.bin/node bench/aws-interruption.ts [--runs 3] [--notice 20]')
  process.exit(0)
}
const why = netnsMachinesAvailable()
if (why !== false) { console.error(`bench/aws-interruption: ${why}`); process.exit(1) }
const runs = Number(values.runs)
const noticeMs = Number(values.notice) * 1000

const root = mkdtempSync(join(tmpdir(), 'meshd-bench-aws-'))
const outer: Array<() => void | Promise<void>> = []
const teardown = async (list: Array<() => void | Promise<void>>): Promise<void> => { for (const fn of list.reverse()) { try { await fn() } catch {} } }
process.on('SIGINT', () => { void teardown(outer).then(() => { rmSync(root, { recursive: true, force: true }); process.exit(130) }) })

console.log('the bundle (built once per source digest into node_modules/.cache) ...')
const bundle = await testBundle()
const results: Record<'notice' | 'none', InterruptionRun[]> = { notice: [], none: [] }

for (let i = 0; i < runs; i++) {
  for (const arm of ['notice', 'none'] as const) {
    const list: Array<() => void | Promise<void>> = []
    const t = { teardown: (fn: () => void | Promise<void>) => { list.push(fn) } }
    try {
      const dir = mkdtempSync(join(root, `run-${i}-${arm}-`))
      const mesh = await startAwsMesh(t, dir, {
        bundle,
        spot: { 'us-east-1a': 0.03, 'us-east-1b': 0.03 },
        // At its time a reclaimed instance is powered off: whatever still runs there is cut (SIGKILL, no
        // grace). With the notice read the node has drained and left by then; without, it is cut mid-stream.
        fake: { terminateGraceMs: 0 },
        config: interruptionConfig(2)
      })
      await waitFor(async () => (await mesh.nodes[0]!.status()).members.filter((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true).length === 2, { timeoutMs: 120_000, what: 'two burst members ready' })
      const run = await interruptUnderLoad(mesh, { noticeMs, notice: arm === 'notice' })
      results[arm].push(run)
      console.log(`run ${i + 1} ${arm === 'notice' ? 'with notice   ' : 'without notice'}: replacement ready ${run.replacementReadyMs === null ? 'never' : fmtMs(run.replacementReadyMs)}, instance gone ${fmtMs(run.goneMs)}, failed ${run.failures.length} of ${run.ok + run.failures.length}${run.failures.length > 0 ? ` (${[...new Set(run.failures)].slice(0, 2).join('; ')})` : ''}`)
    } finally {
      await teardown(list)
    }
  }
}
await teardown(outer)
rmSync(root, { recursive: true, force: true })

const row = (arm: 'notice' | 'none'): string => {
  const rs = results[arm]
  const ready = rs.map((r) => r.replacementReadyMs).filter((x): x is number => x !== null)
  const failed = rs.map((r) => r.failures.length)
  const total = rs.map((r) => r.ok + r.failures.length)
  return `| ${arm === 'notice' ? 'meshd (notice read)' : 'no notice (node just goes)'} | ${fmtMs(median(ready))} | ${fmtMs(median(rs.map((r) => r.goneMs)))} | ${median(failed)} of ${median(total)} (${failed.join(', ')}) |`
}
console.log(`\ninterruption ${values.notice} s ahead, ${runs} runs per arm, medians\n`)
console.log('| | notice → replacement ready | notice → instance gone | requests failed (per run) |')
console.log('| --- | ---: | ---: | ---: |')
console.log(row('notice'))
console.log(row('none'))
