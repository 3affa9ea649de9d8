/** The human view of `meshd status`, shared by the status command and the demo. */
import { renderTable, shortId, percent, money, ago } from './table.ts'
import type { StatusDocument, MemberStatus } from '../../status.ts'

export function renderStatus (doc: StatusDocument): string {
  // Released members (left, or burst capacity the ledger terminated) are not
  // down, they are gone: the header counts the others. They are listed only
  // with --all, marked, and cost nothing.
  const current = doc.members.filter((m) => m.released === undefined)
  const alive = current.filter((m) => m.state === 'alive').length
  const released = (doc.released?.length ?? 0) + doc.members.length - current.length
  const releasedNote = released === 0 ? '' : ` · ${released} released${doc.released !== undefined ? ' (status --all lists them)' : ''}`
  const leader = doc.leader === null ? 'none' : (doc.members.find((m) => m.id === doc.leader)?.name ?? shortId(doc.leader))
  const why = doc.leader === null && typeof doc.election?.reason === 'string' ? ` (${doc.election.reason})` : ''
  const lines = [
    `Mesh ${doc.cluster}: ${alive}/${current.length} members alive${releasedNote} · leader ${leader}${why} · term ${doc.term}`,
    `This node: ${doc.name} (${doc.self})`
  ]
  if (doc.budget !== undefined) {
    const b = doc.budget
    const spend = b.spend_today !== undefined ? ` · spent today ${money(b.spend_today)}, this month ${money(b.spend_month ?? 0)}` : ''
    lines.push(`Burst spend: ${money(b.spend_per_hour)}/h of ${money(b.cost_budget)}/h budget${spend}`)
  }
  lines.push('')
  const rows = doc.members.map((m) => row(m, doc))
  lines.push(renderTable(['NAME', 'ID', 'PROVIDER', 'REGION', 'STATE', 'LOAD', 'REPLICA', 'COST/H', 'LAST SEEN'], rows))
  const clashing = [...new Set(doc.members.filter((m) => m.same_name_as !== undefined).map((m) => m.name))]
  for (const name of clashing) {
    const ids = doc.members.filter((m) => m.name === name && m.same_name_as !== undefined).map((m) => shortId(m.id))
    lines.push(`! ${ids.length} members are named "${name}" (${ids.join(', ')}): give each node its own node_name`)
  }
  return lines.join('\n')
}

function row (m: MemberStatus, doc: StatusDocument): string[] {
  const mark = (m.id === doc.leader ? '*' : '') + (m.id === doc.self ? ' (self)' : '')
  const kind = m.burst === true ? `${m.provider} (burst${m.spot ? ', spot' : ''})` : m.provider + (m.spot ? ' (spot)' : '')
  const state = m.released === 'terminated' ? `released (${m.state})` : m.draining && m.state === 'alive' ? 'draining' : m.state
  const replica = m.replica === null
    ? '-'
    : `${m.replica.ready ? 'ready' : 'not ready'} ${m.replica.inflight}/${m.replica.slots}${m.replica.queued > 0 ? ` +${m.replica.queued}q` : ''} ${m.replica.models.join(',')}`
  return [
    m.name + (m.same_name_as !== undefined ? ' !' : '') + mark,
    shortId(m.id),
    kind,
    m.zone !== undefined ? `${m.region}/${m.zone}` : m.region,
    state,
    `cpu ${percent(m.load.cpu)} mem ${percent(m.load.mem)}`,
    replica,
    m.released !== undefined ? '-' : money(m.cost_per_hour),
    m.id === doc.self ? '-' : ago(m.last_seen_ms)
  ]
}
