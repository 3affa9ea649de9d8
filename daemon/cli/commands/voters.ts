import { parseCommandArgs, UsageError } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'
import { renderTable, shortId } from '../common/table.ts'

export const help = `usage: meshd voters [--json]
       meshd voters remove <peer id>
       meshd voters reset --force

The voter set of the leader election as this node knows it: each voter's
name, peer id and state, and the leader. A voter that left with \`meshd
leave\` is removed at once; a dead one only after election.voter_expiry
(default 24 h), or now with \`voters remove\` (e.g. a machine that will not
come back, so that quorum is counted without it). \`remove\` needs a leader,
and answers once the removal is committed.

Two voters cannot fail over: a majority of 2 is 2, so when one is gone for
good the other can elect no one, and \`voters remove\` finds no leader. Run
three voters (any always-on host with voter: true) to survive the loss of one.

\`voters reset --force\` is the last resort when a majority of the voters is
gone for good (Consul's peers.json): run it on ONE survivor. It makes this
node the only voter of a new group, written to its election storage, and it
elects itself within seconds. Entries the old group had not committed may
become committed, and the dropped voters are not asked. Voters of the old
group that come back later yield and are added as fresh voters (or \`meshd
join\` them to this node). Refused while this node leads or follows a live
leader.`

interface VoterList {
  voters: string[]
  members?: Array<{ id: string, name: string | null, state: string, leader: boolean }>
  leader: string | null
  leader_name?: string | null
  term: number
  group: string | null
  reason: string | null
}

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('voters', argv, { force: { type: 'boolean', default: false } }, true)
  const config = configFor(values.config)
  if (positionals[0] === 'remove') {
    if (positionals.length !== 2) throw new UsageError('voters remove: expected exactly one peer id')
    const r = await call(config, 'voters', { remove: positionals[1] }, { timeoutMs: 30_000 }) as { reason: string }
    if (values.json) printJson(r)
    else process.stdout.write(`${r.reason}\n`)
    return 0
  }
  if (positionals[0] === 'reset') {
    if (positionals.length !== 1) throw new UsageError('voters reset: takes no argument besides --force')
    const r = await call(config, 'voters', { reset: true, force: values.force }, { timeoutMs: 30_000 }) as { reason: string, supersedes: string }
    process.stderr.write(`WARNING: forced recovery done. The voter set of group ${r.supersedes} was replaced without the other voters' consent;\n` +
      'this node is now the only voter. Run this on one survivor only. Add voters again by starting them (they rejoin as fresh voters).\n')
    if (values.json) printJson(r)
    else process.stdout.write(`${r.reason}\n`)
    return 0
  }
  if (values.force) throw new UsageError('voters: --force goes with `voters reset` only')
  if (positionals.length > 0) throw new UsageError(`voters: unknown argument "${positionals[0]}" (see \`meshd voters --help\`)`)
  const r = await call(config, 'voters', {}, { timeoutMs: 10_000 }) as VoterList
  if (values.json) { printJson(r); return 0 }
  const leader = r.leader === null ? `none${r.reason !== null ? ` (${r.reason})` : ''}` : `${r.leader_name ?? '?'} (${shortId(r.leader)})`
  process.stdout.write(`group ${r.group ?? '(none yet)'} · term ${r.term} · leader ${leader}\n`)
  const members = r.members ?? r.voters.map((id) => ({ id, name: null, state: '?', leader: id === r.leader }))
  const rows = members.map((m) => [m.name ?? '?', m.id, m.state, m.leader ? 'leader' : ''])
  process.stdout.write(renderTable(['NAME', 'PEER ID', 'STATE', ''], rows) + '\n')
  return 0
}
