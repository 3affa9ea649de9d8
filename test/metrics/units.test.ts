/**
 * The pure parts of the metrics: histogram buckets reaching the request
 * timeout, bounded route labels, per-member load by name, voters reachable,
 * burst instances by provider and state from the ledger, and the PromQL
 * name extraction the dashboard test relies on.
 */
import t from 'tap'
import { histogramBuckets, memberLoad } from '../../daemon/metrics.ts'
import { routeLabel, ROUTE_LABELS } from '../../daemon/http/request-labels.ts'
import { BILLING_STATES, instanceCounts, votersReachable } from '../../daemon/leader/metrics.ts'
import type { Member } from '../../mesh/membership/table.ts'
import { promqlMetricNames } from '../helpers/prom.ts'
import { Harness } from '../leader/harness.ts'
import { MIN, T0, offering, policy } from '../leader/fixtures.ts'

t.test('histogram buckets: increasing, from 1 ms, the last finite one at least the request timeout', async (t) => {
  for (const timeout of [1, 45, 60, 61, 600, 1000, 7200]) {
    const b = histogramBuckets(timeout)
    t.equal(b[0], 0.001, `${timeout} s: starts at 1 ms`)
    t.ok(b.every((x, i) => i === 0 || x > b[i - 1]!), `${timeout} s: strictly increasing`)
    t.ok(b[b.length - 1]! >= timeout, `${timeout} s: reaches it (${b[b.length - 1]})`)
    t.ok(b.length < 2 || b[b.length - 2]! < Math.max(timeout, 60), `${timeout} s: no bucket past the one that reaches it`)
  }
  t.same(histogramBuckets(600).slice(-3), [60, 120, 300, 600].slice(-3), 'the default 10 min: …, 120, 300, 600')
  t.equal(histogramBuckets(1000).at(-1), 1200)
  t.equal(histogramBuckets(7200).at(-1), 7200, 'beyond the steps: the timeout itself')
})

t.test('route labels are a fixed set, whatever the path', async (t) => {
  t.equal(routeLabel('/v1/chat/completions'), 'chat_completions')
  t.equal(routeLabel('/v1/models'), 'models')
  t.equal(routeLabel('/v1/models/llama3'), 'models')
  t.equal(routeLabel('/metrics'), 'metrics')
  for (const p of ['/', '/v1/x', '/v1/chat/completions/extra', '/__proto__', '/constructor', `/${'a'.repeat(5000)}`]) {
    t.ok((ROUTE_LABELS as readonly string[]).includes(routeLabel(p)), `${p.slice(0, 30)} → ${routeLabel(p)}`)
  }
})

function member (id: string, name: string, state: Member['state'], replica: { inflight: number, queued: number, slots: number } | null, voter = false): Member {
  return { id, state, heartbeat: { name, voter, replica: replica === null ? null : { ready: true, models: ['m'], qps: 0, ...replica } } } as unknown as Member
}

t.test('load per member: alive members with a replica, by name; two under one name add up', async (t) => {
  const ms = [
    member('p1', 'a', 'alive', { inflight: 2, queued: 1, slots: 4 }),
    member('p2', 'b', 'alive', null),
    member('p3', 'c', 'dead', { inflight: 9, queued: 9, slots: 9 }),
    member('p4', 'a', 'alive', { inflight: 1, queued: 0, slots: 2 })
  ]
  t.same([...memberLoad(ms, (l) => l.inflight)], [['a', 3]])
  t.same([...memberLoad(ms, (l) => l.slots)], [['a', 6]])
})

t.test('voters reachable: itself and the voters it lists alive', async (t) => {
  const ms = [member('v2', 'v2', 'alive', null, true), member('v3', 'v3', 'suspect', null, true), member('x', 'x', 'alive', null)]
  t.equal(votersReachable(['v1', 'v2', 'v3'], ms, 'v1'), 2, 'self + v2; v3 is suspect')
  t.equal(votersReachable(['v2', 'v3'], ms, 'x'), 1, 'a non-member of the set counts only the voters')
  t.equal(votersReachable([], ms, 'v1'), 0)
})

t.test('burst instances: every configured provider and billing state, finished ones left out', async (t) => {
  const h = new Harness(policy({ burst: { costBudget: 10 } }), [offering('workstation', 'local', 0.3)])
  h.decide(T0, { burst: [{ id: 'a', count: 3 }] })
  h.launched('d1-1-0', 'i-a', T0 + MIN)
  const before = instanceCounts(h.ledger, ['workstation', 'aws'])
  t.same([...before.keys()], ['workstation', 'aws'])
  t.same([...before.get('aws')!.values()], BILLING_STATES.map(() => 0), 'a provider with none: all 0')
  t.equal(before.get('workstation')!.get('provisioning'), 2)
  t.equal(before.get('workstation')!.get('starting'), 1)
  h.decide(T0 + 2 * MIN, { terminate: [{ id: 't', all: true }] })
  const after = instanceCounts(h.ledger, ['workstation'])
  t.equal([...after.get('workstation')!.values()].reduce((a, b) => a + b, 0), 3, 'terminating still bills')
  t.same(instanceCounts(h.ledger, []).size, 1, 'a provider not in the config but holding instances is reported')
})

t.test('PromQL: the metric names an expression selects', async (t) => {
  t.same(promqlMetricNames('histogram_quantile(0.95, sum by (le) (rate(meshd_x_bucket{job=~"$job",route="a b"}[$__rate_interval])))'), ['meshd_x_bucket'])
  t.same(promqlMetricNames('max by (member) (a{x="y"}) / max by (member) (b) > 0').sort(), ['a', 'b'])
  t.same(promqlMetricNames('changes(max(meshd_term)[1h:]) + sum without (instance) (c offset 5m) or on (job) d').sort(), ['c', 'd', 'meshd_term'])
})
