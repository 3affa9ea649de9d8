/**
 * One launched node's record on disk (`<work_dir>/<key>/instance.json`),
 * written atomically (temp file + rename), so that any daemon on this
 * machine — the one that launched it or a later leader — sees the same
 * truth, and a crash never leaves half a record.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'

export const MANIFEST_VERSION = 1
export const MANIFEST = 'instance.json'

export const manifestSchema = z.object({
  v: z.literal(MANIFEST_VERSION),
  key: z.string(),
  id: z.string(),
  cluster: z.string(),
  provider: z.string(),
  region: z.string(),
  pid: z.number().int().positive().nullable(),
  config: z.string(),
  launched_at: z.number(),
  price_per_hour: z.number().nonnegative(),
  /** Set by delete(): when SIGTERM was sent (a later call escalates to SIGKILL). */
  stop_requested_at: z.number().nullable(),
  /** Set once the process is known gone: the key stays remembered (idempotency). */
  terminated_at: z.number().nullable(),
  address: z.string().nullable()
})

export type Manifest = z.output<typeof manifestSchema>

export function readManifest (dir: string): Manifest | null {
  try {
    const parsed = manifestSchema.safeParse(JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

export function writeManifest (dir: string, m: Manifest): void {
  const file = join(dir, MANIFEST)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(m, null, 2), { mode: 0o640 })
  renameSync(tmp, file)
}
