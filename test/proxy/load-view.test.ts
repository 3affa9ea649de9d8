import t from 'tap'
import { LoadView } from '../../daemon/proxy/load-view.ts'

t.test('reports, corrected by our own dispatches since', async (t) => {
  const v = new LoadView()
  t.equal(v.outstanding('a'), 0, 'unknown members are empty')
  v.report('a', { inflight: 2, queued: 1, slots: 4 })
  t.equal(v.outstanding('a'), 3)
  v.dispatched('a')
  v.dispatched('a')
  t.equal(v.outstanding('a'), 5, 'what we sent since the report counts at once')
  v.finished('a')
  t.equal(v.outstanding('a'), 4)
  v.report('a', { inflight: 1, queued: 0, slots: 4 })
  t.equal(v.outstanding('a'), 1, 'a fresh report replaces the estimate (it includes what it saw of ours)')
  t.equal(v.mine('a'), 1, 'our own in-flight count survives reports')
  v.report('a', { inflight: 0, queued: 0, slots: 4 })
  t.equal(v.outstanding('a'), 1, 'never below what we ourselves have in flight there')
  v.finished('a')
  v.finished('a')
  t.equal(v.mine('a'), 0, 'never negative')
  t.equal(v.outstanding('a'), 0)
})
