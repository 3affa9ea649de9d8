/**
 * Voters started at once, each alone, then joined one by one in a chain or a
 * star (issue 11: three voters joined in a chain sometimes never settled on
 * one leader). Over many seeds, every voter must name the same acting leader,
 * of one group holding every voter, within 5 s of virtual time after the last
 * join, and keep naming it. Replay one seed with
 * MESHD_MERGE_SEED=<seed> (prints the run's trace); MESHD_MERGE_SEEDS=N for more.
 */
import t from 'tap'
import { MergeSim, type Topology } from '../../mesh/election/sim/merge.ts'
import { percentile } from '../../mesh/election/sim/failover.ts'

const BOUND_MS = 5000
const SEEDS = Number(process.env.MESHD_MERGE_SEEDS ?? 400)
const only = process.env.MESHD_MERGE_SEED === undefined ? null : Number(process.env.MESHD_MERGE_SEED)

for (const voters of [3, 5]) {
  for (const topology of ['chain', 'star'] as Topology[]) {
    t.test(`${voters} voters started at once, joined in a ${topology}`, async (t) => {
      const failures: string[] = []
      const settled: number[] = []
      const seeds = only !== null ? [only] : Array.from({ length: SEEDS }, (_, i) => voters * 100_000 + i)
      for (const seed of seeds) {
        const sim = new MergeSim({ seed, voters, topology, trace: only !== null })
        try {
          const r = sim.run(BOUND_MS)
          if (r.settledMs === null) failures.push(`seed ${seed}: no agreement within ${BOUND_MS} ms of the last join: ${sim.describe()}`)
          else settled.push(r.settledMs)
        } catch (err) {
          failures.push((err as Error).message)
        }
        if (only !== null) t.comment(sim.trace.join('\n'))
      }
      settled.sort((a, b) => a - b)
      t.comment(`${settled.length}/${seeds.length} settled; ms after the last join: p50 ${percentile(settled, 0.5).toFixed(0)}, p99 ${percentile(settled, 0.99).toFixed(0)}, max ${settled.at(-1)?.toFixed(0)}`)
      for (const f of failures.slice(0, 5)) t.fail(`${f}\n  replay: MESHD_MERGE_SEED=${f.match(/seed (\d+)/)?.[1] ?? '?'} node_modules/.bin/tap test/election/merge.test.ts`)
      t.equal(failures.length, 0, `every seed settles (${failures.length} did not)`)
    })
  }
}
