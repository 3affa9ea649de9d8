/**
 * The deterministic simulation, first half of the seeds: thousands of random
 * fault schedules against the real Raft, every invariant checked after every
 * event (see mesh/election/sim/checker.ts). MESHD_SIM_SEED=N replays one.
 */
import t from 'tap'
import { replaySeed, runSeeds } from './sim-runner.ts'

const replay = process.env.MESHD_SIM_SEED
if (replay !== undefined) {
  t.test(`replay seed ${replay}`, async (t) => { await replaySeed(t, Number(replay)) })
} else {
  t.test('chaos schedules, seeds from 1', async (t) => { await runSeeds(t, 1, 2000) })
}
