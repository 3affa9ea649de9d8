/** Burst nodes of the local provider in end-to-end tests. */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { readManifest } from '../../providers/local/manifest.ts'
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
