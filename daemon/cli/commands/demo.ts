import { parseCommandArgs, UsageError } from '../common/command.ts'

export const help = `usage: meshd demo [--duration S] [--nodes N] [--keep] [--json]

A self-contained local mesh that shows the whole job on this one machine:
N daemons (default 3) on loopback, each with its own state dir and a
simulated inference engine, joined in a chain; they elect a leader; traffic
from 12 streaming clients spreads over them; a member is killed for real and
restarted; \`burst --count 5\` within a 1.00/h budget is cut to 3 local
replicas that join and take traffic; the leader is killed and replaced; the
burst replicas are released; a summary. Takes about a minute; --duration S
keeps it running at least S seconds; Ctrl-C stops it cleanly at any time.
Nothing outside a temporary directory is touched; --keep keeps it (configs
and logs) for a look.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('demo', argv, {
    duration: { type: 'string' },
    nodes: { type: 'string' },
    keep: { type: 'boolean', default: false }
  })
  const duration = values.duration === undefined ? 0 : Number(values.duration)
  if (!Number.isFinite(duration) || duration < 0) throw new UsageError('demo: --duration must be a number of seconds')
  const nodes = values.nodes === undefined ? 3 : Number(values.nodes)
  if (!Number.isInteger(nodes) || nodes < 3 || nodes > 9) throw new UsageError('demo: --nodes must be an integer from 3 to 9')
  const { runDemo } = await import('../../localmesh/demo.ts')
  return runDemo({ durationMs: duration * 1000, nodes, keep: values.keep, json: values.json })
}
