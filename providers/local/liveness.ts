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

/** The process's arguments, or null when there is none to read (no such process, a zombie, a kernel thread, or one in the middle of an exec or an exit). */
export function commandLine (pid: number): string[] | null {
  if (!Number.isInteger(pid) || pid <= 0) return null
  if (HAVE_PROC) {
    let raw: string
    try {
      raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    } catch {
      return null
    }
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

/**
 * /proc/<pid>/stat after the command name: state, ppid, pgrp, session,
 * tty, tpgid, flags, ... The name may hold spaces and parentheses, so the
 * fields are counted from its last ')'.
 */
function statFields (pid: number | 'self'): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return null
  }
}

// include/linux/sched.h
const PF_EXITING = 0x4
const PF_KTHREAD = 0x00200000

/**
 * Why a live process shows no command line. Linux empties
 * /proc/<pid>/cmdline while a process execs (between the switch to the new
 * address space and the setup of its arguments) and while it exits; a
 * zombie and a kernel thread have none at all. Only the exec case is a
 * process that is about to show its arguments again: bin/meshd is a shell
 * script that execs node, and a launcher that looks in that moment must
 * not take its own node for gone (it did, and leaked the node).
 */
function emptyBecause (pid: number): 'changing' | 'gone' | 'other' {
  const fields = statFields(pid)
  if (fields === null) return 'gone'
  const state = fields[0]
  const flags = Number(fields[6])
  if (state === 'Z' || state === 'X' || (flags & PF_EXITING) !== 0) return 'gone'
  if ((flags & PF_KTHREAD) !== 0) return 'other'
  return 'changing'
}

/**
 * Whose process this pid is now: `ours` (its command line names our
 * config), `other` (a reused pid), `gone`, or `changing` (mid-exec: it
 * shows no arguments for a moment; ask again).
 */
export type Identity = 'ours' | 'other' | 'gone' | 'changing'

export function identify (pid: number | null, configPath: string): Identity {
  if (pid === null || !Number.isInteger(pid) || pid <= 0) return 'gone'
  const argv = commandLine(pid)
  if (argv !== null) return argv.includes(configPath) ? 'ours' : 'other'
  if (!HAVE_PROC) return pidExists(pid) ? 'other' : 'gone'
  return emptyBecause(pid)
}

/** The process is certainly the meshd started with this config. */
export function isOurProcess (pid: number | null, configPath: string): boolean {
  return identify(pid, configPath) === 'ours'
}

/**
 * The process may still be ours: it is, or it is mid-exec and cannot say.
 * What a launcher asks before it records a node as ended.
 */
export function mayBeOurProcess (pid: number | null, configPath: string): boolean {
  const who = identify(pid, configPath)
  return who === 'ours' || who === 'changing'
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
 * The processes started with this config, found by their command lines: a
 * launcher that died between spawning a node and recording its pid leaves
 * it to be found this way. Only the outermost of them: bin/meshd is a shell
 * script, and while it runs a command substitution (`$(uname -m)`) a forked
 * copy of it shows the same command line for a moment, as a child of the
 * real one. Linux only (elsewhere: none).
 */
export function pidsByConfig (configPath: string): number[] {
  if (!HAVE_PROC) return []
  let names: string[]
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n))
  } catch {
    return []
  }
  const ours = new Set<number>()
  for (const n of names) {
    const pid = Number(n)
    if (pid > 1 && pid !== process.pid && isOurProcess(pid, configPath)) ours.add(pid)
  }
  return [...ours].filter((pid) => !ours.has(Number(statFields(pid)?.[1])))
}

/** The meshd started with this config (see pidsByConfig), or null. */
export function findByConfig (configPath: string): number | null {
  return pidsByConfig(configPath)[0] ?? null
}

/** This process's group: never signalled (a bug or a reused pid must not take the launcher down). */
function ownGroup (): number | null {
  const pgrp = Number(statFields('self')?.[2])
  return Number.isInteger(pgrp) && pgrp > 0 ? pgrp : null
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
