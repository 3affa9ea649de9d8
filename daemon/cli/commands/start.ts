import { loadConfig, resolveConfigPath } from '../../config/load.ts'
import { parseCommandArgs } from '../common/command.ts'
import { SwarmKeyError } from '../../../mesh/swarm-key.ts'
import { preflight } from '../../startup/preflight.ts'
import { StartError } from '../../startup/listen-errors.ts'

export const help = `usage: meshd start [--config FILE]

Runs the daemon in the foreground: joins the mesh, gossips this node's load
and health, serves the HTTP endpoint and the admin socket. Logs are JSON lines
on stdout. SIGTERM or SIGINT drains and exits 0; a second one exits at once.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('start', argv, {})
  const file = resolveConfigPath(values.config)
  const config = loadConfig(file)
  preflight(config, file)
  const { Daemon } = await import('../../daemon.ts')
  let resolveDone!: (code: number) => void
  const done = new Promise<number>((resolve) => { resolveDone = resolve })
  const daemon = new Daemon(config, { onExit: (code) => { resolveDone(code) } })

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
    // The operator's mistakes (exit 2) are said in one line, without a stack; anything else is a bug to report.
    const mine = err instanceof SwarmKeyError || err instanceof StartError
    const code = mine ? 2 : 1
    const what = (err as Error).message
    if (mine) daemon.log.fatal({ key: err instanceof StartError ? err.key : 'swarm_key_file' }, `meshd could not start: ${what}`)
    else daemon.log.fatal({ err }, `meshd could not start: ${what}`)
    process.stderr.write(`meshd: could not start: ${what}\n`)
    await daemon.stop('error').catch(() => {})
    return code
  }
  return done
}
