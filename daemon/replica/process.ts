/**
 * The engine as an operating-system process: started through `/bin/sh` in a
 * session and process group of its own, signalled as a group, and never
 * outliving the daemon.
 *
 * The shell runs a small wrapper (WRAPPER below) around the command:
 *
 * - A watcher subshell blocks reading fd 3, a pipe whose other end only the
 *   daemon holds. When the daemon dies, however it dies (SIGKILL, OOM), the
 *   kernel closes that end, `read` returns, and the watcher SIGKILLs the
 *   whole group: no engine is left holding the port and the GPU for the next
 *   daemon. The watcher ignores SIGTERM/SIGINT/SIGHUP, so a graceful stop of
 *   the group does not leave it behind as a zombie of the engine; it goes with
 *   the SIGKILL of the group that ends every run.
 * - The command runs in the foreground under `eval`, with a trap on TERM, INT
 *   and HUP. POSIX defers a trap until the foreground command has finished,
 *   so when the group gets SIGTERM the wrapper stays until the engine has
 *   drained and then exits with its status: the supervisor watches the
 *   wrapper, and the wrapper's exit means the engine is done. (An engine
 *   killed by signal N shows as exit code 128+N, as in any shell.)
 * - A command that starts with `exec` (the simulator's does) replaces the
 *   wrapper, so its pid is the engine's own.
 *
 * A wrapper script of the operator's that runs its server in the foreground
 * without `exec` and without a trap dies on SIGTERM before its server has
 * drained, and the drain is cut when the group is killed: such scripts
 * should `exec` their server, as Docker entrypoints do.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { constants } from 'node:os'
import type { Readable, Writable } from 'node:stream'

export const WRAPPER = [
  '( trap "" TERM INT HUP; read -r _ <&3; kill -KILL 0 ) &',
  'meshd_watcher=$!',
  'exec 3<&-',
  'trap : TERM INT HUP',
  'eval "$MESHD_REPLICA_COMMAND"',
  'meshd_status=$?',
  'kill -KILL "$meshd_watcher" 2>/dev/null',
  'exit "$meshd_status"'
].join('\n')

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
  /** Set when the process could not be started at all. */
  error?: string
}

export interface ReplicaProcess {
  /** The wrapper's pid (the engine's own when its command `exec`s); also the process group id. */
  readonly pid: number | undefined
  readonly stdout: Readable
  readonly stderr: Readable
  /** Resolves once, when the process has exited (or could not start). */
  readonly exited: Promise<ExitInfo>
  /** Signals every process of the group; false when none is left. A SIGTERM also SIGCONTs, so a stopped engine can act on it. */
  signalGroup: (signal: NodeJS.Signals) => boolean
  /** Closes the daemon's end of the watcher pipe (after the group is gone). */
  release: () => void
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>
  cwd?: string
}

export function spawnReplica (command: string, opts: SpawnOptions = {}): ReplicaProcess {
  const proc: ChildProcess = spawn('/bin/sh', ['-c', WRAPPER, 'meshd-replica'], {
    detached: true,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env, MESHD_REPLICA_COMMAND: command }
  })
  const keeper = proc.stdio[3] as Writable | null
  // The watcher never reads data and may be gone: errors on our end mean nothing.
  keeper?.on('error', () => {})
  const exited = new Promise<ExitInfo>((resolve) => {
    let done = false
    proc.once('exit', (code, signal) => {
      if (done) return
      done = true
      resolve({ code, signal })
    })
    proc.once('error', (err) => {
      // 'error' without a pid: it never started. With a pid (a failed kill),
      // the process is still there and 'exit' will come.
      if (done || proc.pid !== undefined) return
      done = true
      resolve({ code: null, signal: null, error: err.message })
    })
  })
  const pid = proc.pid
  return {
    pid,
    stdout: proc.stdout!,
    stderr: proc.stderr!,
    exited,
    signalGroup: (signal) => {
      if (pid === undefined) return false
      try {
        process.kill(-pid, signal)
      } catch {
        return false
      }
      if (signal !== 'SIGKILL' && signal !== 'SIGCONT') {
        try { process.kill(-pid, 'SIGCONT') } catch {}
      }
      return true
    },
    release: () => { keeper?.destroy() }
  }
}

/** "exited with code 1", "killed by SIGKILL", "exited with code 137 (128+SIGKILL)". */
export function describeExit (e: ExitInfo): string {
  if (e.error !== undefined) return `could not be started: ${e.error}`
  if (e.signal !== null) return `killed by ${e.signal}`
  if (e.code !== null && e.code > 128 && e.code < 128 + 65) {
    const name = signalName(e.code - 128)
    if (name !== null) return `exited with code ${e.code} (128+${name})`
  }
  return `exited with code ${e.code ?? '?'}`
}

function signalName (n: number): string | null {
  for (const [name, num] of Object.entries(constants.signals)) if (num === n) return name
  return null
}

/**
 * Processes of a group that are still alive (not zombies), from /proc; an
 * empty list on systems without /proc. For checks and tests.
 */
export function groupMembers (pgid: number): number[] {
  const out: number[] = []
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    return out
  }
  for (const p of pids) {
    const st = procStat(Number(p))
    if (st !== null && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(Number(p))
  }
  return out
}

/** Alive and not a zombie (a zombie still answers kill(pid, 0)). */
export function processAlive (pid: number): boolean {
  const st = procStat(pid)
  if (st !== null) return st.state !== 'Z' && st.state !== 'X'
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function procStat (pid: number): { state: string, pgrp: number } | null {
  let s: string
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
  const close = s.lastIndexOf(')')
  const rest = s.slice(close + 2).split(' ')
  return { state: rest[0] ?? '?', pgrp: Number(rest[2]) }
}
