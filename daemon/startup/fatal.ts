/**
 * Nothing may end the daemon without saying so in its log. A throw or a
 * rejection that nobody handles still ends the process (as Node would: its
 * state is unknown), but after one `fatal` line, and with exit 4 when the
 * state disk is the cause (store/writes.ts), 1 otherwise. Installed by
 * `meshd start` once its logger exists.
 */
import type { Log } from '../log.ts'
import { diskProblem, EXIT_STATE_WRITE } from '../store/writes.ts'

export function exitOnUncaught (log: Log, exit: (code: number) => void = (code) => { process.exit(code) }): void {
  process.on('uncaughtException', (err) => { fatalExit(log, 'uncaught exception', err, exit) })
  process.on('unhandledRejection', (reason) => { fatalExit(log, 'unhandled promise rejection', reason, exit) })
}

function fatalExit (log: Log, kind: string, err: unknown, exit: (code: number) => void): void {
  const disk = diskProblem(err)
  const code = disk !== null ? EXIT_STATE_WRITE : 1
  const message = err instanceof Error ? err.message : String(err)
  log.fatal({ err, exit: code, ...(disk !== null ? { disk } : {}) }, `meshd stopped: ${kind}: ${message}${disk !== null ? ' (the state disk: free space or fix it, then start meshd again)' : ''}`)
  exit(code)
}
