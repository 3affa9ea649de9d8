/**
 * Is the process with this pid still the meshd we started? A pid alone is
 * not enough once the process is gone: the kernel reuses pids. Its command
 * line must still name its own config file.
 */
import { readFileSync } from 'node:fs'

export function isOurProcess (pid: number | null, configPath: string): boolean {
  if (pid === null) return false
  let cmdline: string
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return false
  }
  // A zombie (exited, not yet reaped) has an empty command line.
  return cmdline.split('\0').includes(configPath)
}

export function signal (pid: number, sig: NodeJS.Signals, group = false): boolean {
  try {
    process.kill(group ? -pid : pid, sig)
    return true
  } catch {
    return false
  }
}
