import t from 'tap'
import fc from 'fast-check'
import { autoscale, perReplica, type AutoInput } from '../../daemon/leader/plan/autoscale.ts'
import type { Recommendation } from '../../daemon/leader/plan/memory.ts'
import { MIN, T0, member, policy, provider } from './fixtures.ts'

const p = policy({
  burst: { mode: 'auto', queueDepthThreshold: 100, minCloudInstances: 0, maxCloudInstances: 20, scaleDownDelayMs: 5 * MIN },
  service: { minReplicas: 1, maxReplicas: 30, targetQpsPerReplica: 5, upscaleDelayMs: 0, downscaleDelayMs: 20 * MIN },
  providers: [provider('aws', 'aws', { spot: true, replica: { models: ['m'], slots: 10, command: 'sim' } })]
})

/** One always-on member carrying the mesh's load. */
function input (qps: number, burst: number, over: Partial<AutoInput> = {}, queued = 0): AutoInput {
  return {
    now: T0,
    policy: p,
    members: [member('s', { replica: { ready: true, models: ['m'], slots: 4, inflight: 0, queued, qps } })],
    burst,
    since: T0 - 60 * MIN,
    recommendations: [],
    shallowSince: T0 - 60 * MIN,
    ...over
  }
}

const hist = (...xs: Array<[number, number]>): Recommendation[] => xs.map(([ago, desired]) => ({ at: T0 - ago, desired }))

t.test('the target: qps, tolerance band, queue threshold, clipping', async (t) => {
  const rows: Array<{ name: string, in: AutoInput, raw: number, desired: number, direction: string }> = [
    { name: '20 qps / 5 → 4 replicas, 1 always-on → 3 burst', in: input(20, 0), raw: 3, desired: 3, direction: 'up' },
    { name: 'within ±10% of target: no change (2 replicas at 10.5 qps)', in: input(10.5, 1), raw: 1, desired: 1, direction: 'hold' },
    { name: 'just outside the band: 11.5 qps on 2 → 3 replicas', in: input(11.5, 1), raw: 2, desired: 2, direction: 'up' },
    { name: 'no load: min_replicas 1 is the always-on member', in: input(0, 0), raw: 0, desired: 0, direction: 'hold' },
    { name: 'a queue under the threshold does nothing', in: input(0, 0, {}, 90), raw: 0, desired: 0, direction: 'hold' },
    { name: 'spawn: queue 150 over 100 at 10 slots → 150/10+1 = 16 replicas → 15 burst, 10 per tick', in: input(0, 0, {}, 150), raw: 15, desired: 10, direction: 'up' },
    { name: 'max_replicas caps the target', in: input(1000, 0), raw: 20, desired: 10, direction: 'up' },
    { name: 'max_cloud_instances caps the burst', in: { ...input(100, 0), policy: { ...p, burst: { ...p.burst, maxCloudInstances: 3 } } }, raw: 3, desired: 3, direction: 'up' },
    { name: 'min_cloud_instances keeps some warm', in: { ...input(0, 0), policy: { ...p, burst: { ...p.burst, minCloudInstances: 2 } } }, raw: 2, desired: 2, direction: 'up' }
  ]
  for (const r of rows) {
    const a = autoscale(r.in)
    t.equal(a.raw, r.raw, `${r.name}: raw`)
    t.equal(a.desired, r.desired, `${r.name}: desired`)
    t.equal(a.direction, r.direction, `${r.name}: direction`)
  }
  t.equal(perReplica(policy({ providers: [] })), 10, "spawn's ~10 jobs per instance when no provider says")
})

t.test('stabilisation: up to the lowest of the up window, down to the highest of the down window', async (t) => {
  const up = { ...p, service: { ...p.service, upscaleDelayMs: 5 * MIN } }
  let a = autoscale({ ...input(20, 0, { recommendations: hist([6 * MIN, 0], [4 * MIN, 1], [MIN, 3]) }), policy: up })
  t.match(a, { desired: 1, direction: 'up' }, 'upscale_delay 5 min: the lowest of the last 5 min (1)')
  a = autoscale({ ...input(20, 0, { recommendations: hist([6 * MIN, 0], [4 * MIN, 1], [MIN, 3]) }) })
  t.match(a, { desired: 3, direction: 'up' }, 'upscale_delay 0: at once')

  a = autoscale(input(0, 4, { recommendations: hist([25 * MIN, 9], [15 * MIN, 4], [5 * MIN, 2]) }))
  t.match(a, { desired: 4, direction: 'hold' }, 'a higher recommendation within the 20 min window holds')
  a = autoscale(input(0, 4, { recommendations: hist([25 * MIN, 9], [15 * MIN, 2], [5 * MIN, 1]) }))
  t.match(a, { desired: 2, direction: 'down' }, 'down to the highest of the window (2)')
  a = autoscale(input(0, 8, { recommendations: hist([15 * MIN, 0]) }))
  t.match(a, { desired: 3, direction: 'down' }, 'at most 5 per tick')
  a = autoscale(input(0, 4, { since: T0 - 10 * MIN }))
  t.match(a, { desired: 4, direction: 'hold' }, 'a new leader watches a whole window before scaling down')
  t.match(a.reason, /watching 10m of the 20m window/)
  a = autoscale(input(0, 4, { shallowSince: T0 - 2 * MIN }))
  t.match(a, { desired: 4, direction: 'hold' }, 'the queue has been shallow only 2 min of scale_down_delay 5 min')
  a = autoscale(input(0, 4, {}, 60))
  t.match(a, { direction: 'hold', shallowSince: null }, 'a queue above half the threshold holds scale-down (hysteresis)')
})

t.test('never both directions, always within [min_cloud, max_cloud] and one step of spawn\'s caps (property)', async (t) => {
  fc.assert(fc.property(
    fc.double({ min: 0, max: 500, noNaN: true }), fc.nat(400), fc.nat(25),
    fc.array(fc.record({ ago: fc.nat(40 * MIN), desired: fc.nat(25) }), { maxLength: 20 }),
    fc.nat(3), fc.integer({ min: 3, max: 20 }),
    (qps, queued, burst, recs, min, max) => {
      const pol = { ...p, burst: { ...p.burst, minCloudInstances: min, maxCloudInstances: max } }
      const a = autoscale({ ...input(qps, burst, { recommendations: recs.map((r) => ({ at: T0 - r.ago, desired: r.desired })) }, queued), policy: pol })
      if (a.raw < min || a.raw > max) return false
      if (a.direction === 'up') return a.desired > burst && a.desired - burst <= 10
      if (a.direction === 'down') return a.desired < burst && burst - a.desired <= 5 && a.desired >= min
      return a.desired === burst
    }
  ))
})
