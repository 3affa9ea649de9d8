/**
 * Runs a range of seeded chaos schedules (mesh/election/sim/chaos.ts) as a
 * tap test, shared by the two sim test files so tap can run them on both
 * cores. A failure prints the seed, the violation, the tail of the run's
 * trace, and the command that replays exactly that schedule:
 *
 *   MESHD_SIM_SEED=1234 node_modules/.bin/node test/election/sim.test.ts
 *
 * MESHD_SIM_SEEDS=N runs N seeds per file instead of the default.
 */
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { runChaos } from '../../mesh/election/sim/chaos.ts'
import { SimFailure } from '../../mesh/election/sim/checker.ts'

export function replayCommand (seed: number): string {
  return `MESHD_SIM_SEED=${seed} node_modules/.bin/node test/election/sim.test.ts`
}

export async function runSeeds (t: Test, first: number, defaultCount: number): Promise<void> {
  const count = Number(process.env.MESHD_SIM_SEEDS ?? defaultCount)
  const started = performance.now()
  let events = 0
  let messages = 0
  let terms = 0
  let committed = 0
  const faults: Record<string, number> = {}
  const failures: string[] = []
  for (let seed = first; seed < first + count; seed++) {
    try {
      const r = runChaos({ seed })
      events += r.events
      messages += r.messages
      terms += r.terms
      committed += r.committed
      for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      failures.push(`seed ${seed}: ${message}\n  replay: ${replayCommand(seed)}`)
      if (failures.length >= 5) break
    }
  }
  const ms = performance.now() - started
  t.comment(`${count} schedules (seeds ${first}..${first + count - 1}) in ${(ms / 1000).toFixed(1)} s: ${events} events, ${messages} messages, ${terms} terms, ${committed} entries committed`)
  t.comment(`faults: ${Object.entries(faults).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  for (const f of failures) t.fail(f)
  if (failures.length === 0) t.pass(`${count} schedules without a violation`)
}

/** Replays one seed with a trace; on failure prints the tail and saves the whole trace. */
export async function replaySeed (t: Test, seed: number): Promise<void> {
  try {
    const r = runChaos({ seed, trace: true })
    t.pass(`seed ${seed} passes: ${JSON.stringify(r)}`)
  } catch (err) {
    if (!(err instanceof SimFailure)) throw err
    const file = join(tmpdir(), `meshd-sim-${seed}.trace`)
    writeFileSync(file, err.trace.join('\n') + '\n')
    t.comment(err.trace.slice(-120).join('\n'))
    t.fail(`seed ${seed}: ${err.message}\n  full trace: ${file}\n  replay: ${replayCommand(seed)}`)
  }
}
