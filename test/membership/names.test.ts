import t from 'tap'
import { nameClashes, describeClash } from '../../mesh/membership/names.ts'
import type { MemberState } from '../../mesh/membership/suspicion.ts'

const m = (id: string, name: string, state: MemberState = 'alive') => ({ id, state, heartbeat: { name } as never })

t.test('nameClashes: members around that share a name', async (t) => {
  t.same(nameClashes([m('a', 'x'), m('b', 'y')]), [], 'distinct names')
  t.same(nameClashes([m('p2', 'x'), m('p1', 'x'), m('p3', 'y')]), [{ name: 'x', ids: ['p1', 'p2'] }])
  t.same(nameClashes([m('p1', 'x'), m('p2', 'x', 'suspect'), m('p3', 'x', 'dead'), m('p4', 'x', 'left')]), [{ name: 'x', ids: ['p1', 'p2'] }],
    'suspect counts; a dead or left entry (e.g. the old identity of a reinstalled host) does not')
  t.same(nameClashes([m('p1', 'x'), m('p2', 'x', 'dead')]), [])
  t.same(nameClashes([m('b1', 'b'), m('b2', 'b'), m('a1', 'a'), m('a2', 'a'), m('a3', 'a')]).map((c) => [c.name, c.ids.length]), [['a', 3], ['b', 2]])
  t.equal(describeClash({ name: 'hel1', ids: ['12D3KooWA', '12D3KooWB'] }), '2 members are named "hel1": 12D3KooWA and 12D3KooWB; give each node its own node_name')
})
