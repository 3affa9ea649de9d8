/**
 * The local cluster's checks and its one poll, without daemons: leader
 * agreement, alive on every viewer, and waitFor's deadline and abort.
 */
import t from 'tap'
import { agreedLeader, aliveOn, notAliveOn, type Viewer } from '../../daemon/localmesh/cluster.ts'
import { waitFor, WaitAborted, WaitTimeout } from '../../daemon/localmesh/poll.ts'
import type { StatusDocument } from '../../daemon/status.ts'

function doc (leader: string | null, term: number, voters?: string[], members: Array<[string, string]> = []): StatusDocument {
  return {
    leader,
    term,
    election: voters === undefined ? undefined : { voters },
    members: members.map(([id, state]) => ({ id, state }))
  } as unknown as StatusDocument
}

const viewer = (s: StatusDocument): Viewer => ({ status: async () => s })

t.test('agreedLeader: one leader named by all, with the voter count when asked', async (t) => {
  t.same(agreedLeader([doc('a', 3), doc('a', 3)]), { leader: 'a', term: 3 })
  t.equal(agreedLeader([doc('a', 3), doc('b', 3)]), null, 'two leaders named')
  t.equal(agreedLeader([doc('a', 3), doc(null, 3)]), null, 'one knows none')
  t.equal(agreedLeader([]), null, 'no views')
  t.same(agreedLeader([doc('a', 2, ['a', 'b', 'c']), doc('a', 2, ['a', 'b', 'c'])], 3), { leader: 'a', term: 2 })
  t.equal(agreedLeader([doc('a', 2, ['a', 'b', 'c']), doc('a', 2, ['a', 'b'])], 3), null, 'one still has two voters')
  t.equal(agreedLeader([doc('a', 2), doc('a', 2)], 3), null, 'no election section: no voters')
})

t.test('aliveOn / notAliveOn', async (t) => {
  const v1 = viewer(doc(null, 0, undefined, [['a', 'alive'], ['b', 'alive'], ['c', 'suspect']]))
  const v2 = viewer(doc(null, 0, undefined, [['a', 'alive'], ['b', 'dead']]))
  t.equal(await aliveOn([v1], ['a', 'b']), true)
  t.equal(await aliveOn([v1, v2], ['a', 'b']), false, 'v2 does not list b alive')
  t.equal(await aliveOn([v1], ['a', 'c']), false, 'suspect is not alive')
  t.equal(await notAliveOn([v1, v2], 'c'), true)
  t.equal(await notAliveOn([v1, v2], 'b'), false, 'v1 lists b alive')
  t.equal(await notAliveOn([v1], 'zz'), true, 'not listed at all')
})

t.test('waitFor: the first result other than undefined, null and false; errors count as not yet', async (t) => {
  let calls = 0
  const { value, ms } = await waitFor(() => {
    calls++
    if (calls === 1) throw new Error('not up')
    return calls >= 3 ? 0 : false
  }, { timeoutMs: 2000, intervalMs: 5, what: 'three calls' })
  t.equal(value, 0, '0 is a result')
  t.equal(calls, 3)
  t.ok(ms >= 0)
})

t.test('waitFor: times out with what it last saw', async (t) => {
  const err = await waitFor(() => false, { timeoutMs: 50, intervalMs: 10, what: 'never' }).catch((e: unknown) => e)
  t.ok(err instanceof WaitTimeout)
  t.match((err as Error).message, /timed out after 50 ms waiting for never; last seen: false/)
  const err2 = await waitFor(() => { throw new Error('refused') }, { timeoutMs: 30, intervalMs: 10, what: 'a socket' }).catch((e: unknown) => e)
  t.match((err2 as Error).message, /last seen: "refused"/)
})

t.test('waitFor: an abort ends the wait at once', async (t) => {
  const stop = new AbortController()
  setTimeout(() => { stop.abort() }, 30)
  const start = performance.now()
  const err = await waitFor(() => false, { timeoutMs: 10_000, intervalMs: 5000, what: 'forever', signal: stop.signal }).catch((e: unknown) => e)
  t.ok(err instanceof WaitAborted, 'WaitAborted')
  t.ok(performance.now() - start < 2000, 'well before the interval or the deadline')
})
