/**
 * What the daemon does when a write to its state database fails (a full or
 * failing state disk), by what the write is for:
 *
 * - **non-essential** (the peer cache, `meshd join` addresses, the stored
 *   incarnation, the recorded peer id): losing one costs a little memory
 *   across a restart and nothing now, so it is logged (each kind's first
 *   failure at once, then at most once a minute with a count) and the node goes on
 *   serving. `/health` says `disk: full` meanwhile (daemon.ts).
 * - **essential** (the election's hard state and log, which carry the burst
 *   ledger): a vote or an acknowledged entry that is not on disk is a promise
 *   Raft cannot keep, and a message that announces it must not go out. The
 *   node stops at once with one `fatal` log line and exit code
 *   EXIT_STATE_WRITE (4), which the systemd unit does not restart
 *   (RestartPreventExitStatus): restarting on a full disk would fail the
 *   same way, over and over.
 */
import { statfsSync } from 'node:fs'
import { dirname } from 'node:path'

export const EXIT_STATE_WRITE = 4

export type DiskProblem = 'full' | 'io_error' | 'read_only'

/** The state-disk problem an error reports (SQLite's or the file system's), or null for any other error. */
export function diskProblem (err: unknown): DiskProblem | null {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return null
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'full'
  if (code.startsWith('SQLITE_IOERR') || code === 'EIO') return 'io_error'
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS') return 'read_only'
  return null
}

/** An error in words an operator can act on: "SQLITE_FULL: database or disk is full". */
export function describeWriteError (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  const message = err instanceof Error ? err.message : String(err)
  return typeof code === 'string' && code !== message ? `${code}: ${message}` : message
}

/**
 * When a repeated failure is logged: the first at once, then one per
 * `everyMs` carrying how many were not logged. Pure (the clock is passed in).
 */
export class LogThrottle {
  private readonly everyMs: number
  private last = -Infinity
  private suppressed = 0

  constructor (everyMs: number) {
    this.everyMs = everyMs
  }

  /** null: do not log this one; else log it, with the count of those skipped since the last. */
  hit (now: number): { suppressed: number } | null {
    if (now - this.last < this.everyMs) { this.suppressed++; return null }
    const out = { suppressed: this.suppressed }
    this.last = now
    this.suppressed = 0
    return out
  }

  /** Back to logging the next failure at once. */
  reset (): void {
    this.last = -Infinity
    this.suppressed = 0
  }
}

export interface DiskCondition {
  disk: 'ok' | DiskProblem | 'write_error'
  /** What failed last and why, while the condition lasts. */
  error?: string
  /** When the condition began (the first failure since writes last worked). */
  since?: number
  /** When the last write failed. */
  at?: number
}

/**
 * Below this many free bytes on the state disk the disk counts as full even
 * when a write just worked: SQLite reuses the space of its WAL after a
 * checkpoint, so on a full disk some writes go through and the next ones
 * fail, and /health must not flip to ok in between.
 */
export const MIN_FREE_BYTES = 1 << 20

/** Bytes available to this user on the file system holding `path`, or null when it cannot be read. */
export function freeBytes (path: string): number | null {
  try {
    const s = statfsSync(dirname(path))
    return s.bavail * s.bsize
  } catch {
    return null
  }
}

export interface StateWritesInit {
  /** The database file, named in every message. */
  path: string
  /** Free bytes on its disk (tests pass their own). @default freeBytes */
  free?: (path: string) => number | null
  /** @default 60 s */
  logEveryMs?: number
  now?: () => number
}

export interface StateWritesComponents {
  log: {
    info: (o: object, msg: string) => void
    error: (o: object, msg: string) => void
    fatal: (o: object, msg: string) => void
  }
  /** Ends the process (process.exit in the daemon). */
  exit: (code: number) => void
}

export class StateWrites {
  private readonly init: StateWritesInit
  private readonly c: StateWritesComponents
  private readonly now: () => number
  private readonly logEveryMs: number
  private readonly free: (path: string) => number | null
  /** One per kind of write: a failing peer cache must not hide that the join addresses failed too. */
  private readonly throttles = new Map<string, LogThrottle>()
  private failing: { problem: DiskCondition['disk'], error: string, since: number, at: number } | null = null
  private fatal = false

  constructor (init: StateWritesInit, components: StateWritesComponents) {
    this.init = init
    this.c = components
    this.now = init.now ?? Date.now
    this.logEveryMs = init.logEveryMs ?? 60_000
    this.free = init.free ?? freeBytes
  }

  /** The disk has less than MIN_FREE_BYTES free (null: unknown, taken as room). */
  private low (): number | null {
    const free = this.free(this.init.path)
    return free !== null && free < MIN_FREE_BYTES ? free : null
  }

  /**
   * Runs a write the node can do without: true if it was written; on an
   * error, logs (throttled), remembers the condition for /health, and
   * returns false. A later write that succeeds clears the condition.
   */
  nonEssential (what: string, write: () => void): boolean {
    try {
      write()
    } catch (err) {
      const now = this.now()
      const problem = diskProblem(err) ?? 'write_error'
      const error = `${what}: ${describeWriteError(err)}`
      this.failing = { problem, error, since: this.failing?.since ?? now, at: now }
      let throttle = this.throttles.get(what)
      if (throttle === undefined) this.throttles.set(what, throttle = new LogThrottle(this.logEveryMs))
      const logged = throttle.hit(now)
      if (logged !== null) {
        this.c.log.error({ what, path: this.init.path, disk: problem, err: describeWriteError(err), suppressed: logged.suppressed },
          `could not write ${what} to ${this.init.path} (${describeWriteError(err)}); the node goes on without it${problem === 'full' ? ': free space on the state disk' : ''}`)
      }
      return false
    }
    // A write that fit in space SQLite had already (its WAL) says nothing about the disk.
    if (this.failing !== null && this.low() === null) {
      this.c.log.info({ what, path: this.init.path, since: new Date(this.failing.since).toISOString() }, `writes to ${this.init.path} work again`)
      this.failing = null
      this.throttles.clear()
    }
    return true
  }

  /**
   * An essential write failed: one fatal line, then exit(EXIT_STATE_WRITE),
   * or exit 1 when the error is not the disk's (a bug: nothing to free).
   * Throws the error on if exit returns (tests), so that nothing that
   * depended on the write (a vote, an acknowledgement) is sent.
   */
  essentialFailed (what: string, err: unknown): never {
    if (!this.fatal) {
      this.fatal = true
      const problem = diskProblem(err)
      const code = problem !== null ? EXIT_STATE_WRITE : 1
      const head = problem === 'full' ? 'state disk full' : problem === 'io_error' ? 'state disk failing' : problem === 'read_only' ? 'state disk read-only' : 'state write failed'
      this.c.log.fatal({ what, path: this.init.path, disk: problem ?? 'write_error', err: describeWriteError(err), exit: code },
        `${head}: could not write ${what} to ${this.init.path} (${describeWriteError(err)}); stopping (exit ${code}): a voter cannot go on without it. ${problem === 'full' ? 'Free space on the state disk, then start meshd again' : problem !== null ? 'Fix the state disk, then start meshd again' : 'Please report this'}`)
      this.c.exit(code)
    }
    throw err
  }

  /** For /health: ok, what the last failed write said, or a disk too full to write on. */
  condition (): DiskCondition {
    if (this.failing !== null) return { disk: this.failing.problem, error: this.failing.error, since: this.failing.since, at: this.failing.at }
    const low = this.low()
    if (low !== null) return { disk: 'full', error: `${low} bytes free on the state disk (${dirname(this.init.path)})` }
    return { disk: 'ok' }
  }
}
