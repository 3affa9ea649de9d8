/** Burst nodes launched by the local provider into a work dir, as tests see and reap them. */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { readManifest } from '../../providers/local/manifest.ts'
import { isOurProcess } from '../../providers/local/liveness.ts'
import type { Teardown } from './tmp.ts'

/** Burst processes are detached (they outlive their launcher): kill them at teardown ourselves. */
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

export function runningBurst (workDir: string): string[] {
  let names: string[] = []
  try { names = readdirSync(workDir) } catch {}
  return names.map((n) => readManifest(join(workDir, n))).filter((m) => m !== null && isOurProcess(m.pid, m.config)).map((m) => m!.key)
}
