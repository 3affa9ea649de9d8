import { parseCommandArgs } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'

export const help = `usage: meshd leave [--config FILE] [--json]

Announces this node's departure to the mesh (others list it as "left", and a
voter leaves the voter set), drains the requests in flight, and stops the
daemon. Under systemd the unit then stays stopped (exit status 0).`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('leave', argv, {})
  const config = configFor(values.config)
  const result = await call(config, 'leave', {}, { timeoutMs: 60_000 })
  if (values.json) printJson(result)
  else process.stdout.write('leaving the mesh: draining and stopping\n')
  return 0
}
