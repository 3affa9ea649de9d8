/**
 * `<work_dir>/<key>/instance.json`: everything the local provider knows of
 * one instance, on disk, so that every daemon on this machine using the
 * same work dir — the one that launched it or a later leader — sees the same
 * truth. Nothing lives only in memory.
 *
 * The file is also the lock that makes create() idempotent across
 * processes: the one create() that opens it with O_EXCL ('wx') launches the
 * node; every other create() of the key reads it. After that first write it
 * is only ever replaced whole (temporary file + rename), so a reader sees the
 * old version or the new one, never half of one.
 *
 * The state is not stored but derived (provider.ts, `observe`):
 *   terminated_at set → terminated; no pid yet → launching (shown pending);
 *   stop_requested_at set → stopping; admin socket up → running (and
 *   running_at is set); otherwise pending. A node that was running and whose
 *   socket is gone is stopping by itself (it retires: ttl, idle, lost mesh).
 */
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { z } from 'zod'
import { launchRecordShape } from '../instance-record.ts'

export const MANIFEST_VERSION = 1
export const MANIFEST = 'instance.json'

const exitSchema = z.object({ code: z.number().nullable(), signal: z.string().nullable() })

export const manifestSchema = z.object({
  v: z.literal(MANIFEST_VERSION),
  ...launchRecordShape,
  /** The process that claimed the key and starts the node; while pid is null its liveness tells a launch under way from a dead one. */
  launcher_pid: z.number().int(),
  /** The node's meshd (also its process group and session id); null until it is spawned. */
  pid: z.number().int().positive().nullable(),
  /** Absolute paths: its config (also how its process is recognised), log, admin socket and state dir. */
  config: z.string(),
  log: z.string(),
  socket: z.string(),
  state_dir: z.string(),
  /** First seen answering on its admin socket. */
  running_at: z.number().nullable(),
  /** How it exited, when the process that launched it saw it (only a parent learns the exit status). */
  exit: exitSchema.nullable(),
  /** Its state dir, config and log were removed (a while after it ended). */
  pruned_at: z.number().nullable()
})

export type Manifest = z.output<typeof manifestSchema>

export type ManifestRead =
  | { kind: 'ok', manifest: Manifest }
  /** No such file: the key was never used here (or its claim was given back). */
  | { kind: 'absent' }
  /** There but not a manifest: empty for the moment its creator takes to write it, or damaged. */
  | { kind: 'unreadable', why: string, ageMs: number }

export function manifestPath (dir: string): string {
  return join(dir, MANIFEST)
}

export function readManifestFile (dir: string): ManifestRead {
  const file = manifestPath(dir)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return { kind: 'absent' }
    throw e
  }
  const unreadable = (why: string): ManifestRead => {
    let ageMs = 0
    try { ageMs = Date.now() - statSync(file).mtimeMs } catch {}
    return { kind: 'unreadable', why, ageMs }
  }
  if (text.trim() === '') return unreadable('empty')
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    return unreadable(`not JSON (${(e as Error).message})`)
  }
  const parsed = manifestSchema.safeParse(raw)
  if (!parsed.success) {
    const i = parsed.error.issues[0]
    return unreadable(`not a manifest (${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'})`)
  }
  return { kind: 'ok', manifest: parsed.data }
}

/** The manifest in `dir`, or null when there is none or it cannot be read. */
export function readManifest (dir: string): Manifest | null {
  try {
    const r = readManifestFile(dir)
    return r.kind === 'ok' ? r.manifest : null
  } catch {
    return null
  }
}

function render (m: Manifest): string {
  return JSON.stringify(m, null, 2) + '\n'
}

/**
 * Claims the key: creates the manifest only if there is none (O_EXCL).
 * True when this call created it, false when it existed. Throws ENOENT when
 * the directory vanished (a claim given back concurrently): try again.
 */
export function claimManifest (dir: string, m: Manifest): boolean {
  let fd: number
  try {
    fd = openSync(manifestPath(dir), 'wx', 0o640)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw e
  }
  try {
    writeSync(fd, render(m))
  } finally {
    closeSync(fd)
  }
  return true
}

/** Replaces the manifest whole (temporary file + rename). */
export function writeManifest (dir: string, m: Manifest): void {
  const file = manifestPath(dir)
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    writeFileSync(tmp, render(m), { mode: 0o640 })
    renameSync(tmp, file)
  } catch (e) {
    try { unlinkSync(tmp) } catch {}
    throw e
  }
}
