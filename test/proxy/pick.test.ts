/**
 * The routing choice: power of two choices over load estimates, ties to the
 * local replica, saturation and exclusion. Property tests for what "never"
 * claims: never a member without room, never an excluded one, never the
 * more loaded of the two sampled.
 */
import t from 'tap'
import fc from 'fast-check'
import { pick, leastLoad, loadOf, hasRoom, QUEUE_ALLOWANCE, type Candidate } from '../../daemon/proxy/pick.ts'

const seq = (...xs: number[]): () => number => { let i = 0; return () => xs[i++ % xs.length]! }
const c = (id: string, outstanding: number, slots = 4, local = false): Candidate => ({ id, outstanding, slots, local })
const req = { model: 'm' }

t.test('table', async (t) => {
  t.equal(pick(leastLoad, req, [], Math.random), null, 'no candidate')
  t.equal(pick(leastLoad, req, [c('a', 1)], Math.random)?.id, 'a', 'the only one')
  t.equal(pick(leastLoad, req, [c('a', 3), c('b', 1)], seq(0, 0))?.id, 'b', 'the lower of the two sampled')
  t.equal(pick(leastLoad, req, [c('a', 2, 8), c('b', 2, 2)], seq(0, 0))?.id, 'a', 'load is relative to slots')
  t.equal(pick(leastLoad, req, [c('a', 1), c('b', 1, 4, true)], seq(0, 0))?.id, 'b', 'a tie goes to the local replica')
  t.equal(pick(leastLoad, req, [c('a', 1), c('b', 1), c('l', 1, 4, true)], seq(0, 0))?.id, 'l', 'local wins whenever it is as unloaded as the winner')
  t.equal(pick(leastLoad, req, [c('a', 0), c('l', 2, 4, true)], seq(0, 0))?.id, 'a', 'a busier local replica does not win')
  t.equal(pick(leastLoad, req, [c('a', 6), c('b', 7)], Math.random), null, `no room past slots × ${1 + QUEUE_ALLOWANCE}`)
  t.equal(pick(leastLoad, req, [c('a', 0), c('b', 0)], Math.random, new Set(['a']))?.id, 'b', 'an excluded member (already tried) is skipped')
  t.equal(pick(leastLoad, req, [c('a', 0)], Math.random, new Set(['a'])), null)
})

const candidates = fc.uniqueArray(fc.record({
  id: fc.string({ minLength: 1, maxLength: 4 }),
  outstanding: fc.nat(20),
  slots: fc.integer({ min: 1, max: 8 }),
  local: fc.boolean()
}), { selector: (x) => x.id, minLength: 0, maxLength: 12 }).map((cs) => {
  let seen = false
  return cs.map((x) => { const local = x.local && !seen; if (local) seen = true; return { ...x, local } })
})

t.test('properties', async (t) => {
  fc.assert(fc.property(candidates, fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 2, maxLength: 2 }), fc.array(fc.string({ maxLength: 4 })), (cs, rs, excl) => {
    const exclude = new Set(excl)
    const choice = pick(leastLoad, req, cs, seq(...rs), exclude)
    const open = cs.filter((x) => hasRoom(x) && !exclude.has(x.id))
    if (open.length === 0) return choice === null
    if (choice === null) return false
    if (!open.includes(choice)) return false
    // Never the more loaded of the two sampled: whichever two distinct members
    // were drawn, the lesser of them is at most the second-highest load, and a
    // local replica only replaces the winner when it is no busier.
    if (open.length === 1) return choice === open[0]
    const secondHighest = open.map(loadOf).sort((x, y) => y - x)[1]!
    return loadOf(choice) <= secondHighest
  }), { numRuns: 2000 })
  t.pass('never a member without room, never an excluded one, never the busier of the two sampled')

  // Across many requests, the chosen load's average is below the average load (it steers).
  fc.assert(fc.property(candidates.filter((cs) => cs.filter(hasRoom).length >= 3 && new Set(cs.filter(hasRoom).map(loadOf)).size > 1), (cs) => {
    let state = 1
    const rnd = (): number => { state = (state * 48271) % 2147483647; return state / 2147483647 }
    const open = cs.filter(hasRoom)
    const mean = open.reduce((s, x) => s + loadOf(x), 0) / open.length
    let sum = 0
    for (let i = 0; i < 400; i++) sum += loadOf(pick(leastLoad, req, cs, rnd)!)
    return sum / 400 <= mean
  }), { numRuns: 300 })
  t.pass('on average it picks less loaded members than a random choice would')
})
