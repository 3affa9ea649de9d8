/** The human view of `meshd status`, shared by the status command and the demo. */
import { renderTable, shortId, percent, money, ago } from './table.ts'
import type { StatusDocument, MemberStatus } from '../../status.ts'

export function renderStatus (doc: StatusDocument): string {
  const alive = doc.members.filter((m) => m.state === 'alive').length
  const leader = doc.leader === null ? 'none' : (doc.members.find((m) => m.id === doc.leader)?.name ?? shortId(doc.leader))
  const why = doc.leader === null && typeof doc.election?.reason === 'string' ? ` (${doc.election.reason})` : ''
  const lines = [
    `Mesh ${doc.cluster}: ${alive}/${doc.members.length} members alive · leader ${leader}${why} · term ${doc.term}`,
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
  return lines.join('\n')
}

function row (m: MemberStatus, doc: StatusDocument): string[] {
  const mark = (m.id === doc.leader ? '*' : '') + (m.id === doc.self ? ' (self)' : '')
  const kind = m.burst === true ? `${m.provider} (burst${m.spot ? ', spot' : ''})` : m.provider + (m.spot ? ' (spot)' : '')
  const state = m.draining && m.state === 'alive' ? 'draining' : m.state
  const replica = m.replica === null
    ? '-'
    : `${m.replica.ready ? 'ready' : 'not ready'} ${m.replica.inflight}/${m.replica.slots}${m.replica.queued > 0 ? ` +${m.replica.queued}q` : ''} ${m.replica.models.join(',')}`
  return [
    m.name + mark,
    shortId(m.id),
    kind,
    m.zone !== undefined ? `${m.region}/${m.zone}` : m.region,
    state,
    `cpu ${percent(m.load.cpu)} mem ${percent(m.load.mem)}`,
    replica,
    money(m.cost_per_hour),
    m.id === doc.self ? '-' : ago(m.last_seen_ms)
  ]
}
