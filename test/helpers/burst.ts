/**
 * Burst processes launched by the local provider in end-to-end tests: they
 * are detached (they outlive their launcher), so a test reaps them itself.
 */
import { join } from 'node:path'
import { readdirSync } from 'node:fs'
import { readManifest } from '../../providers/local/manifest.ts'
import { isOurProcess } from '../../providers/local/liveness.ts'
import type { Teardown } from './tmp.ts'

/** Kills every burst process recorded under `workDir` at teardown (also when the test fails). */
export function reapBurst (t: Teardown, workDir: string): void {
  t.teardown(() => {
    let names: string[] = []
    try { names = readdirSync(workDir) } catch {}
    for (const n of names) {
      const m = readManifest(join(workDir, n))
      if (m?.pid != null) { try { process.kill(-m.pid, 'SIGKILL') } catch {} try { process.kill(m.pid, 'SIGKILL') } catch {} }
    }
  })
}

/** Keys of the burst processes under `workDir` that are still running. */
export function runningBurst (workDir: string): string[] {
  let names: string[] = []
  try { names = readdirSync(workDir) } catch {}
  return names.map((n) => readManifest(join(workDir, n))).filter((m) => m !== null && isOurProcess(m.pid, m.config)).map((m) => m!.key)
}
