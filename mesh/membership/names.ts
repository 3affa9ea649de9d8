/**
 * Members that share a `node_name`. Names are for people (status tables, logs,
 * the leader's decision lines), peer ids for the mesh; two hosts left with the
 * same name (a cloned VM, two `localhost`s) work, but every table and log
 * line that names one is ambiguous. So a clash is warned about, not refused.
 *
 * Pure. Only members that are around count (alive or suspect): a host
 * reinstalled with a new identity leaves its old entry dead under the same
 * name until it is forgotten, and that is no clash.
 */
import type { Member } from './table.ts'

export interface NameClash {
  name: string
  /** Two or more peer ids, sorted. */
  ids: string[]
}

export function nameClashes (members: Iterable<Pick<Member, 'id' | 'state' | 'heartbeat'>>): NameClash[] {
  const byName = new Map<string, string[]>()
  for (const m of members) {
    if (m.state !== 'alive' && m.state !== 'suspect') continue
    const ids = byName.get(m.heartbeat.name)
    if (ids === undefined) byName.set(m.heartbeat.name, [m.id])
    else ids.push(m.id)
  }
  const out: NameClash[] = []
  for (const [name, ids] of byName) if (ids.length > 1) out.push({ name, ids: ids.sort() })
  return out.sort((a, b) => a.name.localeCompare(b.name))
}

/** The warning, as the log and `meshd join` say it. */
export function describeClash (c: NameClash): string {
  return `${c.ids.length} members are named "${c.name}": ${c.ids.join(' and ')}; give each node its own node_name`
}
