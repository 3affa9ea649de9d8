import { parseCommandArgs } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'
import { renderStatus } from '../common/render-status.ts'
import type { StatusDocument } from '../../status.ts'

export const help = `usage: meshd status [--all] [--config FILE] [--json]

The mesh as this node sees it: each member's name, peer id, provider, region,
state (alive / suspect / dead), load, replica, cost per hour and when it was
last heard from; the leader (marked *), the term, and spend against the
budget. Members that were released (they left, or the ledger terminated their
burst instance) are gone, not down: they are counted and listed only with
--all, and cost nothing. --json prints the status document (README: Command
line): \`members\` as the table shows them, \`released\` the others, each
with its state.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('status', argv, { all: { type: 'boolean', default: false } })
  const config = configFor(values.config)
  const doc = await call(config, 'status', values.all ? { all: true } : {}, { timeoutMs: 10_000 }) as StatusDocument
  if (values.json) printJson(doc)
  else process.stdout.write(renderStatus(doc) + '\n')
  return 0
}
