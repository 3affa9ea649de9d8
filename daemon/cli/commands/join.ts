import { parseCommandArgs, UsageError } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'
import { renderTable } from '../common/table.ts'
import type { JoinAddrState, JoinResult } from '../../../mesh/discovery/service.ts'

export const help = `usage: meshd join <multiaddr>... [--config FILE] [--json]
       meshd join --list [--json]
       meshd join --forget <multiaddr>

Tells the local daemon to join the mesh through these peers (any one member
is enough: it learns of the rest). The addresses are remembered across
restarts and dialled (with back-off, up to once a minute) whenever their peer
is not connected. Warns (on stderr, exit 0) when two members share a node_name.
Example:

  meshd join /ip4/10.0.1.100/tcp/4001/p2p/12D3KooW...

--list shows the remembered join addresses and mesh.bootstrap ones: whether
each is connected, its failed dials in a row and when it is dialled next.
--forget removes a remembered join address for good (also after a restart);
a mesh.bootstrap address is removed from the config instead.`

const MULTIADDR = /^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d+/

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('join', argv, { list: { type: 'boolean', default: false }, forget: { type: 'string' } }, true)
  const config = () => configFor(values.config)
  if (values.list && values.forget !== undefined) throw new UsageError('join: --list and --forget go alone, not together')
  if (values.list) {
    if (positionals.length > 0) throw new UsageError('join --list: takes no address')
    const r = await call(config(), 'join', { list: true }, { timeoutMs: 10_000 }) as { addrs: JoinAddrState[] }
    if (values.json) { printJson(r); return 0 }
    if (r.addrs.length === 0) { process.stdout.write('no join or bootstrap addresses\n'); return 0 }
    const now = Date.now()
    const rows = r.addrs.map((a) => [a.addr, a.source, a.connected ? 'connected' : 'not connected', String(a.failures),
      a.nextDialAt === null ? '-' : `in ${Math.max(0, Math.round((a.nextDialAt - now) / 1000))} s`])
    process.stdout.write(renderTable(['ADDRESS', 'SOURCE', 'STATE', 'FAILURES', 'NEXT DIAL'], rows) + '\n')
    return 0
  }
  if (values.forget !== undefined) {
    if (positionals.length > 0) throw new UsageError('join --forget: takes one address, given as --forget <multiaddr>')
    const r = await call(config(), 'join', { forget: values.forget }, { timeoutMs: 10_000 }) as { forgotten: string }
    if (values.json) printJson(r)
    else process.stdout.write(`forgot ${r.forgotten}: it is no longer dialled, also after a restart\n`)
    return 0
  }
  if (positionals.length === 0) throw new UsageError('join: expected at least one multiaddr (see `meshd join --help`)')
  for (const a of positionals) {
    if (!MULTIADDR.test(a)) throw new UsageError(`join: "${a}" is not a multiaddr like /ip4/10.0.1.100/tcp/4001/p2p/<peer id>`)
  }
  const result = await call(config(), 'join', { addrs: positionals }, { timeoutMs: 30_000 }) as { results: JoinResult[], warnings?: string[] }
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
