/**
 * The lease arithmetic, as a table, plus the property it exists for: a lease
 * measured on the slowest allowed clock ends, in real time, before the
 * shortest promise measured on the fastest allowed clock.
 */
import t from 'tap'
import fc from 'fast-check'
import { DEFAULT_TIMING, electionTimeout, leaseMs, promiseMs, TimingError, validateTiming, type Timing } from '../../mesh/election/raft/timing.ts'

const table: Array<[string, Partial<Timing>, number]> = [
  ['defaults: 1500·0.95/1.05 − 50', {}, 1307],
  ['no drift', { maxDriftRate: 0 }, 1450],
  ['no margin', { leaseSafetyMarginMs: 0 }, 1357],
  ['10% drift, 3 s timeout, no margin', { electionTimeoutMinMs: 3000, electionTimeoutMaxMs: 4000, maxDriftRate: 0.1, leaseSafetyMarginMs: 0 }, 2454],
  ['1% drift, 1 s timeout', { electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000, maxDriftRate: 0.01, heartbeatMs: 200 }, 930]
]
for (const [name, over, want] of table) {
  t.test(`lease: ${name}`, async (t) => {
    const timing = { ...DEFAULT_TIMING, ...over }
    t.equal(leaseMs(timing), want)
    t.equal(promiseMs(timing), timing.electionTimeoutMinMs, 'the promise is the minimum election timeout')
  })
}

t.test('defaults', async (t) => {
  t.same(DEFAULT_TIMING, { heartbeatMs: 500, electionTimeoutMinMs: 1500, electionTimeoutMaxMs: 2250, maxDriftRate: 0.05, leaseSafetyMarginMs: 50 })
  t.ok(leaseMs(DEFAULT_TIMING) > 2 * DEFAULT_TIMING.heartbeatMs, 'two heartbeats fit in a lease: one lost round does not stop the leader acting')
})

t.test('a lease on the slowest clock ends before a promise on the fastest', async (t) => {
  fc.assert(fc.property(
    fc.integer({ min: 100, max: 60_000 }), fc.double({ min: 0, max: 0.5, noNaN: true }), fc.integer({ min: 0, max: 100 }),
    (min, rho, margin) => {
      const timing = { heartbeatMs: 1, electionTimeoutMinMs: min, electionTimeoutMaxMs: min * 2, maxDriftRate: rho, leaseSafetyMarginMs: margin }
      const leaseRealMax = leaseMs(timing) / (1 - rho)
      const promiseRealMin = promiseMs(timing) / (1 + rho)
      return leaseRealMax <= promiseRealMin
    }
  ))
})

t.test('election timeouts fall in [min, max)', async (t) => {
  t.equal(electionTimeout(DEFAULT_TIMING, () => 0), 1500)
  t.equal(electionTimeout(DEFAULT_TIMING, () => 0.5), 1875)
  t.ok(electionTimeout(DEFAULT_TIMING, () => 0.9999999) < 2250)
  t.equal(electionTimeout(DEFAULT_TIMING, () => 1), 1500, 'a broken random source never goes below min')
  t.equal(electionTimeout(DEFAULT_TIMING, () => Number.NaN), 1500)
  t.equal(electionTimeout(DEFAULT_TIMING, () => -3), 1500)
})

const bad: Array<[string, Partial<Timing>, RegExp]> = [
  ['heartbeat as long as the lease', { heartbeatMs: 1307 }, /must exceed heartbeatMs/],
  ['max not above min', { electionTimeoutMaxMs: 1500 }, /electionTimeoutMaxMs/],
  ['drift of 100%', { maxDriftRate: 1 }, /maxDriftRate/],
  ['negative drift', { maxDriftRate: -0.1 }, /maxDriftRate/],
  ['zero heartbeat', { heartbeatMs: 0 }, /heartbeatMs/],
  ['NaN timeout', { electionTimeoutMinMs: Number.NaN }, /finite/],
  ['negative margin', { leaseSafetyMarginMs: -1 }, /leaseSafetyMarginMs/],
  ['margin eats the lease', { leaseSafetyMarginMs: 1400 }, /must exceed heartbeatMs/]
]
for (const [name, over, msg] of bad) {
  t.test(`rejects ${name}`, async (t) => {
    t.throws(() => validateTiming({ ...DEFAULT_TIMING, ...over }), msg)
    t.throws(() => validateTiming({ ...DEFAULT_TIMING, ...over }), TimingError)
  })
}

t.test('accepts the defaults and fills the margin', async (t) => {
  const { leaseSafetyMarginMs: _m, ...noMargin } = DEFAULT_TIMING
  t.same(validateTiming(noMargin), DEFAULT_TIMING)
})
