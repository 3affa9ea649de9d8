/** A replica's speed as meshd measures it: bytes answered per ms, over its last completions. */
import t from 'tap'
import { ServiceSpeed, MIN_SAMPLES } from '../../daemon/proxy/speed.ts'

t.test('no figure until enough requests have finished, then bytes per ms over them', async (t) => {
  const s = new ServiceSpeed()
  for (let i = 0; i < MIN_SAMPLES - 1; i++) s.record(1000, 100)
  t.equal(s.rate(), undefined, 'too few to tell')
  s.record(1000, 100)
  t.equal(s.rate(), 10)
  s.record(0, 100)
  s.record(100, 0)
  t.equal(s.rate(), 10, 'empty or instant answers say nothing')
})

t.test('one long answer does not swing it (ratio of sums), and old answers roll out', async (t) => {
  const fast = new ServiceSpeed()
  const slow = new ServiceSpeed()
  for (let i = 0; i < 20; i++) { fast.record(400, 100); slow.record(400, 300) }
  fast.record(40_000, 10_000)
  t.ok(Math.abs(fast.rate()! / slow.rate()! - 3) < 0.5, `three times faster stays about three (${(fast.rate()! / slow.rate()!).toFixed(2)})`)
  for (let i = 0; i < 64; i++) fast.record(100, 100)
  t.equal(fast.rate(), 1, 'after a full window, only the recent answers count')
})
