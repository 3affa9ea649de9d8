import { loadConfig, resolveConfigPath } from '../../config/load.ts'
import { parseCommandArgs } from '../common/command.ts'
import { SwarmKeyError } from '../../../mesh/swarm-key.ts'
import { preflight } from '../../startup/preflight.ts'
import { StartError } from '../../startup/listen-errors.ts'
import { StateError } from '../../startup/state.ts'
import { diskProblem, describeWriteError, EXIT_STATE_WRITE } from '../../store/writes.ts'
import { exitOnUncaught } from '../../startup/fatal.ts'

export const help = `usage: meshd start [--config FILE] [--reset-state]

Runs the daemon in the foreground: joins the mesh, gossips this node's load
and health, serves the HTTP endpoint and the admin socket. Logs are JSON lines
on stdout. SIGTERM or SIGINT drains and exits 0; a second one exits at once.

It refuses to start (exit 2, naming the files) when the state dir shows lost
state: the database (meshd.db) missing or empty beside an existing
identity.key, identity.key missing beside a database that belongs to a peer
id, a database of another peer id, or a database that fails SQLite's
integrity check (PRAGMA quick_check).

  --reset-state   accept that loss: move what is left of the database aside
                  (meshd.db.reset-<time>) and start with a fresh state (under
                  the same peer id when identity.key is there, else a new one)

Exit status: 0 stopped by a signal or \`meshd leave\`; 1 an internal error
(logged as one \`fatal\` line); 2 bad config or unusable state (one line on
stderr); 4 the state disk is full or failing (an essential write failed, or
the database could not be set up): free space and start again.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('start', argv, { 'reset-state': { type: 'boolean', default: false } })
  const file = resolveConfigPath(values.config)
  const config = loadConfig(file)
  preflight(config, file)
  const { Daemon } = await import('../../daemon.ts')
  let resolveDone!: (code: number) => void
  const done = new Promise<number>((resolve) => { resolveDone = resolve })
  const daemon = new Daemon(config, { onExit: (code) => { resolveDone(code) }, resetState: values['reset-state'] })
  exitOnUncaught(daemon.log)

  let signals = 0
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++
    if (signals > 1) {
      daemon.log.warn({ signal: sig }, 'second signal: exiting now')
      process.exit(1)
    }
    daemon.log.info({ signal: sig }, 'signal received: draining and stopping')
    daemon.stop('signal').then(() => { resolveDone(0) }, () => { resolveDone(1) })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  try {
    await daemon.start()
  } catch (err) {
    // The operator's mistakes (exit 2) and a full disk (exit 4) are said in
    // one line, without a stack; anything else is a bug to report.
    const mine = err instanceof SwarmKeyError || err instanceof StartError || err instanceof StateError
    const disk = mine ? null : diskProblem(err)
    const code = mine ? 2 : disk !== null ? EXIT_STATE_WRITE : 1
    const what = disk !== null ? `state disk ${disk === 'full' ? 'full' : disk === 'read_only' ? 'read-only' : 'failing'} (state_dir ${config.state_dir}): ${describeWriteError(err)}` : (err as Error).message
    if (mine) daemon.log.fatal({ key: err instanceof StartError || err instanceof StateError ? err.key : 'swarm_key_file' }, `meshd could not start: ${what}`)
    else if (disk !== null) daemon.log.fatal({ disk, state_dir: config.state_dir, exit: code }, `meshd could not start: ${what}`)
    else daemon.log.fatal({ err }, `meshd could not start: ${what}`)
    process.stderr.write(`meshd: could not start: ${what}\n`)
    await daemon.stop('error').catch(() => {})
    return code
  }
  const code = await done
  // Everything meshd owns is closed by now. A library's idle keep-alive socket
  // (the AWS SDK's metadata client makes a connection pool per read) must not
  // hold a stopped daemon for its server's keep-alive timeout: leave a second
  // for the last log lines, then go. Unref'd: a process with nothing left
  // exits at once.
  setTimeout(() => { process.exit(code) }, STOPPED_EXIT_MS).unref()
  return code
}

/** How long a stopped daemon waits for lingering handles before exiting anyway. */
export const STOPPED_EXIT_MS = 1000
