/**
 * What a leaving voter does first (mesh/election/leave.ts), and how a group
 * replaced by a forced recovery is recognised (mesh/election/supersede.ts):
 * pure rules, by table.
 */
import t from 'tap'
import { leaveStep, type LeaveView } from '../../mesh/election/leave.ts'
import { supersededBy, withoutSuperseded } from '../../mesh/election/supersede.ts'

const base: LeaveView = { group: 'g', voters: ['a', 'b'], configCommitted: true, self: 'a', role: 'follower', leader: 'b' }

t.test('leaveStep', async (t) => {
  const cases: Array<[string, Partial<LeaveView>, ReturnType<typeof leaveStep>]> = [
    ['a fresh voter (no group) strands no one', { group: null }, { done: 'not_in_group' }],
    ['out of a committed config: already removed', { voters: ['b'] }, { done: 'not_a_voter' }],
    ['out of an uncommitted config: the leader confirms the commit', { voters: ['b'], configCommitted: false }, { act: 'ask_leader', leader: 'b' }],
    ['the only voter: nothing to hand over', { voters: ['a'], role: 'leader', leader: 'a' }, { done: 'only_voter' }],
    ['the leader removes itself', { role: 'leader', leader: 'a' }, { act: 'remove_self' }],
    ['a leader whose own removal is pending waits for it', { role: 'leader', leader: 'a', voters: ['b'], configCommitted: false }, { act: 'remove_self' }],
    ['a follower asks its leader', {}, { act: 'ask_leader', leader: 'b' }],
    ['no leader known: wait', { leader: null, role: 'precandidate' }, { act: 'wait', why: 'no leader known (an election is under way, or no majority of the voters is reachable)' }]
  ]
  for (const [what, v, want] of cases) t.same(leaveStep({ ...base, ...v }), want, what)
})

t.test('supersededBy: a live member announcing our group as replaced', async (t) => {
  const o = (group: string | null, supersedes?: string[], alive = true) => ({ group, supersedes, alive })
  t.equal(supersededBy('old', [o('old'), o('new', ['old'])]), 'new')
  t.equal(supersededBy('old', [o('new', ['older'])]), null, 'another group it replaced')
  t.equal(supersededBy('old', [o('new', ['old'], false)]), null, 'a dead announcer does not count')
  t.equal(supersededBy('old', [o('old', ['old'])]), null, 'never our own group')
  t.equal(supersededBy(null, [o('new', ['old'])]), null, 'a fresh node has nothing to yield')
  t.same(withoutSuperseded([o('old'), o(null), o('other')], ['old']).map((x) => x.group), [null, 'other'], 'the merge rule never weighs a group we replaced')
  t.same(withoutSuperseded([o('old')], []).map((x) => x.group), ['old'])
})
