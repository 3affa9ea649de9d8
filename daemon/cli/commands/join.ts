import { parseCommandArgs, UsageError } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'
import type { JoinResult } from '../../../mesh/discovery/service.ts'

export const help = `usage: meshd join <multiaddr>... [--config FILE] [--json]

Tells the local daemon to join the mesh through these peers (any one member
is enough: it learns of the rest). The addresses are remembered across
restarts. Warns (on stderr, exit 0) when two members share a node_name.
Example:

  meshd join /ip4/10.0.1.100/tcp/4001/p2p/12D3KooW...`

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('join', argv, {}, true)
  if (positionals.length === 0) throw new UsageError('join: expected at least one multiaddr (see `meshd join --help`)')
  for (const a of positionals) {
    if (!/^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d+/.test(a)) throw new UsageError(`join: "${a}" is not a multiaddr like /ip4/10.0.1.100/tcp/4001/p2p/<peer id>`)
  }
  const config = configFor(values.config)
  const result = await call(config, 'join', { addrs: positionals }, { timeoutMs: 30_000 }) as { results: JoinResult[], warnings?: string[] }
  // A name clash does not fail the join: the mesh works, its tables and logs are ambiguous.
  for (const w of result.warnings ?? []) process.stderr.write(`meshd: warning: ${w}\n`)
  if (values.json) printJson(result)
  else {
    for (const r of result.results) {
      process.stdout.write(r.ok
        ? `joined through ${r.addr} (peer ${r.peer ?? '?'})\n`
        : r.refused !== undefined ? `${r.error ?? r.addr}\n` : `could not reach ${r.addr}: ${r.error ?? 'unknown error'}\n`)
    }
  }
  return 0
}
