/**
 * The incarnation rule (mesh/membership/incarnation.ts): a restarted node
 * outranks every earlier run, also after its database was lost, so that no
 * member drops its heartbeats as stale. Before, the incarnation was the
 * stored counter + 1: a node with an emptied database came back at 1, below
 * what its peers held, and stayed dead to them.
 */
import t from 'tap'
import fc from 'fast-check'
import { nextIncarnation } from '../../mesh/membership/incarnation.ts'
import { compareVersion } from '../../mesh/membership/suspicion.ts'
import { MemberTable } from '../../mesh/membership/table.ts'
import { failureTiming } from '../../mesh/membership/constants.ts'
import type { Heartbeat } from '../../mesh/schemas/heartbeat.ts'

const T = 1_750_000_000_000 // a wall clock in ms

t.test('the rule, as a table', async (t) => {
  const table: Array<[string, number | undefined, number, number]> = [
    ['first start: the clock', undefined, T, T],
    ['a database of the old counter (5): the clock', 5, T, T],
    ['restarted within the same millisecond: stored + 1', T, T, T + 1],
    ['the clock went back 1 h: stored + 1', T, T - 3_600_000, T + 1],
    ['a fractional clock is floored', undefined, T + 0.7, T],
    ['a stored value that is not a count is ignored', Number.NaN, T, T],
    ['a clock before 1970 (broken) still gives at least 1', undefined, -5, 1]
  ]
  for (const [what, stored, now, want] of table) t.equal(nextIncarnation(stored, now), want, what)
})

t.test('never shunned: each run outranks every earlier one, whether or not the database survived', async (t) => {
  // Restarts at least 1 ms apart on a clock that does not go back (starting
  // a process takes far longer); before each, the database may be lost.
  fc.assert(fc.property(
    fc.array(fc.record({ gapMs: fc.integer({ min: 1, max: 10_000_000 }), lost: fc.boolean() }), { minLength: 1, maxLength: 50 }),
    fc.nat({ max: 2 ** 40 }),
    (runs, start) => {
      let now = start
      let stored: number | undefined
      let highest = -1
      for (const r of runs) {
        now += r.gapMs
        if (r.lost) stored = undefined
        const inc = nextIncarnation(stored, now)
        if (inc <= highest) return false
        if (!Number.isSafeInteger(inc)) return false
        highest = inc
        stored = inc
      }
      return true
    }
  ))
})

t.test('with the database kept, the clock may go anywhere: still strictly increasing', async (t) => {
  fc.assert(fc.property(fc.array(fc.integer({ min: -(2 ** 40), max: 2 ** 41 }), { minLength: 1, maxLength: 50 }), (clocks) => {
    let stored: number | undefined
    for (const now of clocks) {
      const inc = nextIncarnation(stored, now)
      if (stored !== undefined && inc <= stored) return false
      stored = inc
    }
    return true
  }))
})

t.test('a peer that held the old run drops nothing of the new one, even after the database was lost', async (t) => {
  const timing = failureTiming(1000)
  const table = new MemberTable('self', timing)
  const hb = (incarnation: number, seq: number): Heartbeat => ({
    v: 1, cluster: 'c', id: 'peer', name: 'p', incarnation, seq, sent_at: 0, version: '0', state: 'alive', voter: true,
    provider: 'x', region: 'r', spot: false, cost_per_hour: 0, addrs: [], http: null, load: 0, replica: null, instance: null
  } as unknown as Heartbeat)
  // The old run: started at T, sent 1000 heartbeats.
  const old = nextIncarnation(undefined, T)
  t.equal(table.observeHeartbeat(hb(old, 0), 0).outcome, 'new')
  t.equal(table.observeHeartbeat(hb(old, 999), 1).outcome, 'updated')
  // Restarted a minute later with an emptied database: its first heartbeat is newer.
  const fresh = nextIncarnation(undefined, T + 60_000)
  t.ok(compareVersion({ incarnation: fresh, seq: 0 }, { incarnation: old, seq: 999 }) > 0)
  t.equal(table.observeHeartbeat(hb(fresh, 0), 60_000).outcome, 'updated', 'not stale')
  // What the old counter did: 1 after a lost database, below the 1 + restarts it had reached.
  t.equal(table.observeHeartbeat(hb(1, 0), 60_001).outcome, 'stale', 'the old rule was dropped as stale')
})
