/**
 * Load that bypasses meshd, from the engine's own metrics: never a slot
 * meshd itself has just freed, always load that really came from elsewhere.
 */
import t from 'tap'
import { BypassEstimate, ENGINE_FRESH_MS } from '../../daemon/proxy/bypass.ts'
import { SlotBroker } from '../../daemon/proxy/slot-broker.ts'

t.test('the engine counting only meshd\'s requests is no bypass, even one meshd has just finished', async (t) => {
  const b = new SlotBroker({ slots: 4, models: ['m'] }, () => {})
  b.setOpen(true, 0)
  for (let i = 0; i < 4; i++) b.admit(0)
  const est = new BypassEstimate()
  // The scrape was taken with four running; one of them ended before it was read.
  b.release(1)
  t.equal(est.update({ running: 4, waiting: 0, at: 100 }, () => b.takePeakBusy(), 150), 0, 'the freed slot is free, not held by a stale scrape')
  t.equal(b.free(), 1)
})

t.test('load beyond what meshd sent is counted, and goes when the engine says so', async (t) => {
  const est = new BypassEstimate()
  let peaks = 0
  const peak = (n: number) => () => { peaks++; return n }
  t.equal(est.update({ running: 3, waiting: 2, at: 100 }, peak(2), 150), 3, 'five at the engine, at most two from meshd')
  t.equal(est.update({ running: 3, waiting: 2, at: 100 }, peak(2), 300), 3, 'the same scrape read again')
  t.equal(peaks, 1, 'a window of meshd\'s peak per new scrape')
  t.equal(est.update({ running: 2, waiting: 0, at: 1100 }, peak(2), 1150), 0, 'gone')
  t.equal(est.update({ running: 9, waiting: 0, at: 1100 }, peak(2), 1100 + ENGINE_FRESH_MS), 0, 'a stale scrape counts for nothing')
  t.equal(est.update(null, peak(0), 5000), 0, 'an engine without metrics has no bypass')
})

t.test('the broker\'s peak covers every moment since the last read', async (t) => {
  const b = new SlotBroker({ slots: 4, models: ['m'] }, () => {})
  b.setOpen(true, 0)
  b.admit(0); b.admit(0); b.admit(0)
  b.release(1); b.release(1)
  t.equal(b.takePeakBusy(), 3, 'three at once, though one remains')
  t.equal(b.takePeakBusy(), 1, 'a new window starts at what is there now')
})
