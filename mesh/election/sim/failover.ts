/**
 * Failover measurement: a healthy cluster with default timing and a LAN-like
 * network (1–20 ms, no loss), drifting clocks, a shell that sometimes
 * persists asynchronously and timers up to 10 ms late. After a random
 * stable stretch the acting leader is killed (crash) or hangs (a pause far
 * longer than any timeout); we measure the virtual time until another node
 * acts. This is the number the product cares about: how long no one may
 * decide bursts.
 */
import { Cluster } from './cluster.ts'
import { SimViolation } from './checker.ts'
import { Rng } from './prng.ts'

export interface FailoverSample {
  seed: number
  /** ms from the fault to another node acting. */
  failoverMs: number
  /** ms from the fault until the old leader stopped acting (0 if it was killed). */
  oldStoppedMs: number
}

export function measureFailover (seed: number, voters: number, fault: 'kill' | 'hang'): FailoverSample {
  const plan = new Rng(seed ^ 0x51ed27)
  const c = new Cluster({ seed, voters, net: { minDelayMs: 1, maxDelayMs: 20, loss: 0, duplicate: 0, spike: 0, spikeMaxMs: 0 }, drift: 'random', asyncFlush: 0.3, timerLateMs: 10 })
  if (c.runUntilTrue(() => c.actingLeaders().length === 1, 10_000) === null) throw new SimViolation(`seed ${seed}: no first leader`)
  c.runFor(plan.range(2000, 6000))
  const [old] = c.actingLeaders()
  if (old === undefined) throw new SimViolation(`seed ${seed}: no acting leader before the fault`)
  const term = c.raftOf(old)!.currentTerm
  if (fault === 'kill') c.crash(old)
  else c.pause(old, 60_000)
  let oldStoppedMs = 0
  const failoverMs = c.runUntilTrue(() => {
    if (oldStoppedMs === 0 && !c.actingLeaders().includes(old)) oldStoppedMs = -1
    return c.actingLeaders().some(id => id !== old)
  }, 20_000)
  if (failoverMs === null) throw new SimViolation(`seed ${seed}: no new acting leader within 20 s of the ${fault}`)
  const next = c.actingLeaders()[0]!
  if (c.raftOf(next)!.currentTerm <= term) throw new SimViolation(`seed ${seed}: new leader in an old term`)
  return { seed, failoverMs, oldStoppedMs: fault === 'kill' ? 0 : oldStoppedMs }
}

export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}
