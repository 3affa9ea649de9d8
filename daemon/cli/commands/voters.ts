import { parseCommandArgs, UsageError } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'
import { shortId } from '../common/table.ts'

export const help = `usage: meshd voters [--json]
       meshd voters remove <peer id>

The voter set of the leader election as this node knows it, and the leader.
A voter that left with \`meshd leave\` is removed at once; a dead one only
after election.voter_expiry (default 24 h), or now with \`voters remove\`
(e.g. a machine that will not come back, so that quorum is counted without it).`

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('voters', argv, {}, true)
  const config = configFor(values.config)
  if (positionals[0] === 'remove') {
    if (positionals.length !== 2) throw new UsageError('voters remove: expected exactly one peer id')
    const r = await call(config, 'voters', { remove: positionals[1] }, { timeoutMs: 30_000 }) as { reason: string }
    if (values.json) printJson(r)
    else process.stdout.write(`${r.reason}\n`)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`voters: unknown argument "${positionals[0]}" (see \`meshd voters --help\`)`)
  const r = await call(config, 'voters', {}, { timeoutMs: 10_000 }) as { voters: string[], leader: string | null, term: number, group: string | null, reason: string | null }
  if (values.json) { printJson(r); return 0 }
  process.stdout.write(`group ${r.group ?? '(none yet)'} · term ${r.term} · leader ${r.leader === null ? `none${r.reason !== null ? ` (${r.reason})` : ''}` : shortId(r.leader)}\n`)
  for (const v of r.voters) process.stdout.write(`  ${v}${v === r.leader ? '  (leader)' : ''}\n`)
  return 0
}
