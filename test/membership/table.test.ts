import t from 'tap'
import { MemberTable } from '../../mesh/membership/table.ts'
import { failureTiming } from '../../mesh/membership/constants.ts'
import type { Heartbeat } from '../../mesh/schemas/heartbeat.ts'

function hb (id: string, incarnation: number, seq: number, over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    v: 1, cluster: 'c', id, name: id, incarnation, seq, sent_at: 0, version: '0', state: 'alive', voter: true, provider: 'static', region: 'r',
    spot: false, cost_per_hour: 0, addrs: [], http: null, load: { cpu: 0, mem: 0 }, replica: null, instance: null, ...over
  }
}

t.test('join, silence, refutation, death and forgetting, on a fake clock', async (t) => {
  const table = new MemberTable('self', failureTiming(1000, { forgetAfterMs: 60_000 }))
  let r = table.observeHeartbeat(hb('a', 1, 0), 0)
  t.equal(r.outcome, 'new')
  t.match(r.transition, { from: 'unknown', to: 'alive' })
  t.equal(table.observeHeartbeat(hb('a', 1, 0), 10).outcome, 'stale', 'a duplicate changes nothing')
  t.equal(table.observeHeartbeat(hb('a', 0, 99), 10).outcome, 'stale', 'an older incarnation changes nothing')
  t.same(table.evaluate(3000), [], 'alive while heartbeats are merely late')
  t.match(table.evaluate(3600), [{ id: 'a', from: 'alive', to: 'suspect' }])
  r = table.observeHeartbeat(hb('a', 1, 1), 3700)
  t.match(r.transition, { from: 'suspect', to: 'alive' }, 'a newer heartbeat refutes the suspicion')
  t.match(table.evaluate(3700 + 10_000), [{ to: 'dead' }])
  t.same(table.forget(3700 + 10_000 + 59_000), [], 'kept while within forget_after')
  t.same(table.forget(3700 + 10_000 + 60_000), ['a'], 'forgotten after forget_after')
  t.equal(table.get('a'), undefined)
})

t.test('a closed connection makes a member suspect at once; only newer news clears it', async (t) => {
  const table = new MemberTable('self', failureTiming(1000))
  table.observeHeartbeat(hb('a', 1, 5), 0)
  table.observeConnected('a', 0)
  t.match(table.observeDisconnected('a', 100), { to: 'suspect' })
  t.equal(table.observeHeartbeat(hb('a', 1, 5), 150).outcome, 'stale', 'a late copy of the last heartbeat does not revive it')
  t.equal(table.get('a')!.state, 'suspect')
  t.match(table.observeHeartbeat(hb('a', 1, 6), 900).transition, { to: 'alive' }, 'it spoke since: alive (reachable through others)')
})

t.test('left is sticky until a new incarnation (a restart)', async (t) => {
  const table = new MemberTable('self', failureTiming(1000))
  table.observeHeartbeat(hb('a', 3, 0), 0)
  t.match(table.observeHeartbeat(hb('a', 3, 1, { state: 'left' }), 10).transition, { to: 'left' })
  t.same(table.evaluate(1e6), [], 'a left member never turns dead')
  t.equal(table.observeHeartbeat(hb('a', 3, 2), 20).transition, null, 'the same incarnation cannot come back')
  t.match(table.observeHeartbeat(hb('a', 4, 0), 30).transition, { from: 'left', to: 'alive' }, 'a restart comes back')
})

t.test('self is never suspected', async (t) => {
  const table = new MemberTable('self', failureTiming(1000))
  table.observeHeartbeat(hb('self', 1, 0), 0)
  table.observeDisconnected('self', 1)
  t.same(table.evaluate(1e6), [])
  t.equal(table.get('self')!.state, 'alive')
})
