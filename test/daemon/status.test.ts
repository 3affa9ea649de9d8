/** daemon/status.ts and the table (render-status.ts): released members leave status, costing nothing. */
import t from 'tap'
import { releasedBy, statusMembers, type InstanceLookup } from '../../daemon/status.ts'
import { renderStatus } from '../../daemon/cli/common/render-status.ts'
import type { Member } from '../../mesh/membership/table.ts'
import type { Heartbeat } from '../../mesh/schemas/heartbeat.ts'
import type { MemberState } from '../../mesh/membership/suspicion.ts'

function member (id: string, state: MemberState, over: Partial<Heartbeat> = {}): Member {
  const heartbeat: Heartbeat = {
    v: 1, cluster: 'c', id, name: id, incarnation: 1, seq: 0, sent_at: 0, version: '0', state: 'alive', voter: false, provider: 'static', region: 'r',
    spot: false, cost_per_hour: 0, addrs: [], http: null, load: { cpu: 0, mem: 0 }, replica: null, instance: null, ...over
  }
  return { id, heartbeat, liveness: { heardAt: 0, version: { incarnation: 1, seq: 0 }, disconnectedAt: null, versionAtDisconnect: null, left: state === 'left' }, connected: false, state, stateSince: 0, firstSeen: 0, leftIncarnation: -1 }
}

const burst = (id: string, state: MemberState, key: string): Member => member(id, state, { provider: 'workstation', cost_per_hour: 0.3, instance: { provider: 'workstation', id: `local-${key}`, key, launched_at: 1 } })
const ledger = (states: Record<string, string>): InstanceLookup => (i) => i.key === undefined ? undefined : states[i.key]

t.test('releasedBy: left, or let go by the ledger and not alive', async (t) => {
  const l = ledger({ k1: 'terminated', k2: 'terminating', k3: 'ready', k4: 'failed' })
  t.equal(releasedBy(member('a', 'left'), l), 'left', 'any member that left')
  t.equal(releasedBy(member('a', 'dead'), l), null, 'an always-on member that died is down, not released')
  t.equal(releasedBy(burst('b', 'dead', 'k1'), l), 'terminated')
  t.equal(releasedBy(burst('b', 'suspect', 'k2'), l), 'terminated', 'terminating counts: the leader let it go')
  t.equal(releasedBy(burst('b', 'dead', 'k4'), l), 'terminated')
  t.equal(releasedBy(burst('b', 'dead', 'k3'), l), null, 'a ready instance whose member died is a failure to see')
  t.equal(releasedBy(burst('b', 'alive', 'k1'), l), null, 'a live member is never hidden')
  t.equal(releasedBy(burst('b', 'dead', 'unknown'), l), null, 'unknown to this node\'s ledger')
})

t.test('statusMembers and the table: released members out of the header and the table, kept with --all, at no cost', async (t) => {
  const ms = [member('v1', 'alive', { voter: true }), member('n2', 'alive'), member('n3', 'left'), burst('b1', 'dead', 'k1'), burst('b2', 'alive', 'k2')]
  const l = ledger({ k1: 'terminated', k2: 'ready' })
  const shown = statusMembers(ms, 1000, l, false)
  t.same(shown.members.map((m) => m.id), ['n2', 'v1', 'b2'], 'always-on first, then burst, by name')
  t.same(shown.released?.map((m) => [m.id, m.state, m.released, m.cost_per_hour]), [['n3', 'left', 'left', 0], ['b1', 'dead', 'terminated', 0]])
  const doc = { self: 'v1', name: 'v1', cluster: 'c', leader: 'v1', term: 2, ...shown }
  const table = renderStatus(doc)
  t.comment('\n' + table)
  t.match(table, /^Mesh c: 3\/3 members alive · 2 released \(status --all lists them\) · leader v1 · term 2$/m)
  t.notMatch(table, /^(n3|b1)\s/m)
  t.match(table, /^b2\s.*0\.30/m, 'a running burst member shows its cost')

  const all = statusMembers(ms, 1000, l, true)
  t.equal(all.released, undefined)
  t.equal(all.members.length, 5)
  const tableAll = renderStatus({ ...doc, ...all, released: undefined })
  t.comment('\n' + tableAll)
  t.match(tableAll, /^Mesh c: 3\/3 members alive · 2 released · leader v1/m)
  t.match(tableAll, /^b1\s+\S+\s+workstation \(burst\)\s+r\s+released \(dead\)\s.*\s-\s+\S+$/m, 'released, with its state, no cost')
  t.match(tableAll, /^n3\s+\S+\s+static\s+r\s+left\s.*\s-\s+\S+$/m)
})
