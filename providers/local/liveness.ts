/**
 * Is the process with this pid still the meshd we started? A pid alone is
 * not enough once the process is gone: the kernel reuses pids. Its command
 * line must still name its own config file (`meshd start --config <path>`;
 * bin/meshd execs node, so the pid and the argument survive the exec).
 *
 * Linux reads /proc; elsewhere `ps` answers the same question.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'

const HAVE_PROC = existsSync('/proc/self/cmdline')

/** The process's arguments, or null when there is no such process (or it is a zombie: it has none). */
export function commandLine (pid: number): string[] | null {
  if (!Number.isInteger(pid) || pid <= 0) return null
  if (HAVE_PROC) {
    let raw: string
    try {
      raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    } catch {
      return null
    }
    // A zombie (exited, not yet reaped) and a kernel thread have an empty command line.
    if (raw === '') return null
    return raw.replace(/\0$/, '').split('\0')
  }
  try {
    const out = execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    // `ps` joins arguments with spaces: good enough to find an absolute config path.
    return out === '' ? null : out.split(/\s+/)
  } catch {
    return null
  }
}

export function isOurProcess (pid: number | null, configPath: string): boolean {
  if (pid === null) return false
  return commandLine(pid)?.includes(configPath) ?? false
}

/** A process with this pid exists (whatever it runs). */
export function pidExists (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The meshd started with this config, found by its command line: a launcher
 * that died between spawning a node and recording its pid leaves it to be
 * found this way. Linux only (elsewhere: null).
 */
export function findByConfig (configPath: string): number | null {
  if (!HAVE_PROC) return null
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n))
  } catch {
    return null
  }
  for (const p of pids) {
    const pid = Number(p)
    if (pid > 1 && pid !== process.pid && isOurProcess(pid, configPath)) return pid
  }
  return null
}

/** This process's group: never signalled (a bug or a reused pid must not take the launcher down). */
function ownGroup (): number | null {
  try {
    // /proc/self/stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces, so count from its ')'.
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
    return Number.isInteger(pgrp) && pgrp > 0 ? pgrp : null
  } catch {
    return null
  }
}

const OWN_GROUP = HAVE_PROC ? ownGroup() : null

/**
 * Sends a signal to a node's pid, or to its process group. Refuses pids
 * that can never be a node: 0 and 1 (kill(0) and kill(-1) signal our own
 * group and every process), this process and its group.
 */
export function signal (pid: number, sig: NodeJS.Signals, group = false): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || (group && pid === OWN_GROUP)) return false
  try {
    process.kill(group ? -pid : pid, sig)
    return true
  } catch {
    return false
  }
}

/**
 * SIGKILL for a node: its whole process group (it leads its own session,
 * so the group id is its pid), then the pid itself. Its replica engine runs
 * in a group of its own and goes when its daemon dies (the supervisor's
 * watcher pipe, daemon/replica/process.ts). Callers check isOurProcess
 * first: a group id is a pid, and pids are reused.
 */
export function killNode (pid: number): void {
  signal(pid, 'SIGKILL', true)
  signal(pid, 'SIGKILL')
}
