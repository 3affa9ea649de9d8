/**
 * The failure detector's timing, as a table over a fake clock: what state a
 * member is in after silence, a closed connection, and refutation.
 */
import t from 'tap'
import { stateOf, type Liveness } from '../../mesh/membership/suspicion.ts'
import { failureTiming } from '../../mesh/membership/constants.ts'

const timing = failureTiming(1000)

t.test('defaults: suspect after 3.5 heartbeats, dead after 10', async (t) => {
  t.same(timing, { heartbeatMs: 1000, suspectAfterMs: 3500, deadAfterMs: 10_000, forgetAfterMs: 3_600_000 })
  t.same(failureTiming(200, { suspectAfterMs: 900 }), { heartbeatMs: 200, suspectAfterMs: 900, deadAfterMs: 2000, forgetAfterMs: 3_600_000 })
  t.equal(failureTiming(1000, { suspectAfterMs: 20_000 }).deadAfterMs, 20_000, 'dead never comes before suspect')
})

const base: Liveness = { heardAt: 0, version: { incarnation: 1, seq: 10 }, disconnectedAt: null, versionAtDisconnect: null, left: false }

const table: Array<[string, Partial<Liveness>, number, string]> = [
  ['just heard', {}, 0, 'alive'],
  ['two heartbeats missed', {}, 2999, 'alive'],
  ['a busy sender, timers 400 ms late', {}, 3400, 'alive'],
  ['three missed and half an interval', {}, 3500, 'suspect'],
  ['silent for 9.9 s', {}, 9999, 'suspect'],
  ['silent for 10 s', {}, 10_000, 'dead'],
  ['connection closed, nothing since', { disconnectedAt: 100, versionAtDisconnect: { incarnation: 1, seq: 10 } }, 150, 'suspect'],
  ['connection closed, a newer heartbeat arrived by another path', { disconnectedAt: 100, versionAtDisconnect: { incarnation: 1, seq: 9 } }, 150, 'alive'],
  ['connection closed, a restarted incarnation spoke', { version: { incarnation: 2, seq: 0 }, disconnectedAt: 100, versionAtDisconnect: { incarnation: 1, seq: 10 } }, 150, 'alive'],
  ['connection closed and silent too long', { disconnectedAt: 100, versionAtDisconnect: { incarnation: 1, seq: 10 } }, 10_000, 'dead'],
  ['left', { left: true }, 0, 'left'],
  ['left, then silent forever', { left: true }, 1e9, 'left']
]
for (const [name, over, now, want] of table) {
  t.test(name, async (t) => { t.equal(stateOf({ ...base, ...over }, now, timing), want) })
}
