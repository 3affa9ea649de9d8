/**
 * The routing choice: power of two choices over expected delay (load with
 * the request added, over speed), ties to the local replica, saturation and
 * exclusion. Property tests for what "never" claims: never a member without
 * room, never an excluded one, never the costlier of the two sampled.
 */
import t from 'tap'
import fc from 'fast-check'
import { pick, leastLoad, hasRoom, costOf, speeds, type Candidate } from '../../daemon/proxy/pick.ts'

const seq = (...xs: number[]): () => number => { let i = 0; return () => xs[i++ % xs.length]! }
const c = (id: string, outstanding: number, slots = 4, local = false, rate?: number): Candidate => ({ id, outstanding, slots, local, ...(rate !== undefined ? { rate } : {}) })
const req = { model: 'm' }

t.test('table', async (t) => {
  t.equal(pick(leastLoad, req, [], Math.random), null, 'no candidate')
  t.equal(pick(leastLoad, req, [c('a', 1)], Math.random)?.id, 'a', 'the only one')
  t.equal(pick(leastLoad, req, [c('a', 3), c('b', 1)], seq(0, 0))?.id, 'b', 'the lower of the two sampled')
  t.equal(pick(leastLoad, req, [c('a', 2, 8), c('b', 2, 2)], seq(0, 0))?.id, 'a', 'load is relative to slots')
  t.equal(pick(leastLoad, req, [c('a', 1), c('b', 1, 4, true)], seq(0, 0))?.id, 'b', 'a tie goes to the local replica')
  t.equal(pick(leastLoad, req, [c('a', 1), c('b', 1), c('l', 1, 4, true)], seq(0, 0))?.id, 'l', 'local wins whenever it is as unloaded as the winner')
  t.equal(pick(leastLoad, req, [c('a', 0), c('l', 2, 4, true)], seq(0, 0))?.id, 'a', 'a busier local replica does not win')
  t.equal(pick(leastLoad, req, [c('a', 4), c('b', 7)], Math.random), null, 'no room past the slots')
  t.equal(pick(leastLoad, req, [c('a', 0), c('b', 0)], Math.random, new Set(['a']))?.id, 'b', 'an excluded member (already tried) is skipped')
  t.equal(pick(leastLoad, req, [c('a', 0)], Math.random, new Set(['a'])), null)
})

t.test('speed: a slower member counts as more loaded, also for its own entry node', async (t) => {
  t.equal(pick(leastLoad, req, [c('fast', 0, 4, false, 3), c('slow', 0, 4, true, 1)], seq(0, 0))?.id, 'fast', 'both idle: the fast one, though the slow one is local')
  t.equal(pick(leastLoad, req, [c('fast', 1, 4, false, 3), c('slow', 0, 4, false, 1)], seq(0, 0))?.id, 'fast', 'one busy slot of four at three times the speed is still the shorter delay')
  t.equal(pick(leastLoad, req, [c('fast', 3, 4, false, 3), c('slow', 0, 4, false, 1)], seq(0, 0))?.id, 'fast', 'a fast member with a free slot beats an idle one three times slower')
  t.equal(pick(leastLoad, req, [c('faster', 3, 4, false, 1.5), c('slower', 0, 4, false, 1)], seq(0, 0))?.id, 'slower', 'an almost full member only 1.5× faster loses to an idle one')
  t.equal(pick(leastLoad, req, [c('new', 0, 4), c('slow', 0, 4, false, 1), c('fast', 0, 4, false, 3)], seq(0, 0))?.id, 'new', 'not measured yet: as fast as the average (2), faster than the slow one')
  t.equal(speeds([c('a', 0), c('b', 0)])(c('a', 0)), 1, 'nobody measured: all equal')
  t.equal(pick(leastLoad, req, [c('fast', 2, 4, false, 1.5), c('slow', 0, 4, true, 1)], seq(0, 0))?.id, 'fast', 'equal expected delay: the faster one, though the slower is local')
  t.equal(pick(leastLoad, req, [c('a', 1, 4, false, 3), c('b', 0, 4, false, 3), c('l', 0, 4, true, 3)], seq(0, 0))?.id, 'l', 'a local replica as fast and as free wins (no mesh hop)')
})

const candidates = fc.uniqueArray(fc.record({
  id: fc.string({ minLength: 1, maxLength: 4 }),
  outstanding: fc.nat(20),
  slots: fc.integer({ min: 1, max: 8 }),
  local: fc.boolean(),
  rate: fc.option(fc.double({ min: 0.1, max: 10, noNaN: true }), { nil: undefined })
}), { selector: (x) => x.id, minLength: 0, maxLength: 12 }).map((cs) => {
  let seen = false
  return cs.map((x): Candidate => {
    const local = x.local && !seen
    if (local) seen = true
    return { id: x.id, outstanding: x.outstanding, slots: x.slots, local, ...(x.rate !== undefined ? { rate: x.rate } : {}) }
  })
})

t.test('properties', async (t) => {
  fc.assert(fc.property(candidates, fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 2, maxLength: 2 }), fc.array(fc.string({ maxLength: 4 })), (cs, rs, excl) => {
    const exclude = new Set(excl)
    const choice = pick(leastLoad, req, cs, seq(...rs), exclude)
    const open = cs.filter((x) => hasRoom(x) && !exclude.has(x.id))
    if (open.length === 0) return choice === null
    if (choice === null) return false
    if (!open.includes(choice)) return false
    // Never the costlier of the two sampled: whichever two distinct members
    // were drawn, the better of them costs at most the second-highest cost, and
    // a local replica only replaces the winner when it costs no more (and is no slower).
    if (open.length === 1) return choice === open[0]
    const speed = speeds(open)
    const cost = (x: Candidate): number => costOf(x, speed(x))
    const secondHighest = open.map(cost).sort((x, y) => y - x)[1]!
    return cost(choice) <= secondHighest
  }), { numRuns: 2000 })
  t.pass('never a member without room, never an excluded one, never the costlier of the two sampled')

  // Across many requests, the chosen cost's average is below the average cost (it steers).
  fc.assert(fc.property(candidates.filter((cs) => cs.filter(hasRoom).length >= 3), (cs) => {
    let state = 1
    const rnd = (): number => { state = (state * 48271) % 2147483647; return state / 2147483647 }
    const open = cs.filter(hasRoom)
    const speed = speeds(open)
    const cost = (x: Candidate): number => costOf(x, speed(x))
    if (new Set(open.map(cost)).size === 1) return true
    const mean = open.reduce((s, x) => s + cost(x), 0) / open.length
    let sum = 0
    for (let i = 0; i < 400; i++) sum += cost(pick(leastLoad, req, cs, rnd)!)
    return sum / 400 <= mean + 1e-9
  }), { numRuns: 300 })
  t.pass('on average it picks members of shorter expected delay than a random choice would')
})
