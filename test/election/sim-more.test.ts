/**
 * The deterministic simulation, second half of the seeds (a separate file so
 * tap runs both halves in parallel). Replay any seed with sim.test.ts.
 */
import t from 'tap'
import { runSeeds } from './sim-runner.ts'

if (process.env.MESHD_SIM_SEED === undefined) {
  const count = Number(process.env.MESHD_SIM_SEEDS ?? 2000)
  t.test('chaos schedules, seeds from 1000001', async (t) => { await runSeeds(t, 1_000_001, count) })
} else {
  t.pass('replaying a single seed in sim.test.ts')
}
