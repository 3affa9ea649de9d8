import { parseCommandArgs, UsageError } from '../command.ts'

export const help = `usage: meshd demo [--duration S] [--nodes N] [--keep]

A self-contained local mesh that shows the whole job on this one machine:
starts N daemons (default 3) on loopback with their own state dirs and a
fresh swarm key, joins them in a chain, shows the live member table, kills
one for real to show failure detection, restarts it, and stops cleanly after
--duration seconds (default 45) or on Ctrl-C. Nothing outside a temporary
directory is touched; --keep keeps it (configs and logs) for a look.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('demo', argv, {
    duration: { type: 'string' },
    nodes: { type: 'string' },
    keep: { type: 'boolean', default: false }
  })
  const duration = values.duration === undefined ? 45 : Number(values.duration)
  if (!Number.isFinite(duration) || duration < 10) throw new UsageError('demo: --duration must be a number of seconds, at least 10')
  const nodes = values.nodes === undefined ? 3 : Number(values.nodes)
  if (!Number.isInteger(nodes) || nodes < 2 || nodes > 12) throw new UsageError('demo: --nodes must be an integer from 2 to 12')
  const { runDemo } = await import('../../demo/demo.ts')
  return runDemo({ durationMs: duration * 1000, nodes, keep: values.keep, json: values.json })
}
