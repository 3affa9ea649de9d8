/**
 * /metrics of real daemons: a voter that leads with a budget (1.00/h, a local
 * provider at 0.30/h) after a burst of one, and the burst node it launched.
 * Checks that the Grafana dashboard's queries all resolve against the
 * leader's scrape, that no label carries a peer id, the names stock
 * dashboards expect (process_*, nodejs_* unprefixed; no meshd_ gauge named
 * _total), the election and budget gauges against `status --json`, and that
 * docs/metrics.md lists exactly the meshd_ series the leader exports.
 */
import t from 'tap'
import { join } from 'node:path'
import OpenAI from 'openai'
import { tempDir } from '../helpers/tmp.ts'
import { reapBurst } from '../helpers/burst.ts'
import { startJoined, sumMetric, writeSwarmKey } from '../helpers/daemon.ts'
import { dashboardMetricNames, documentedSeries, familyOf, families, samples } from '../helpers/prom.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const sim = { ttft_ms: 20, tokens_per_second: 200, max_tokens: 8 }
const replica = { models: ['llama3'], slots: 4, command: 'sim', readiness_probe: { initial_delay_seconds: 60, period_seconds: 1 }, sim }
/** prom-client's standard gauges that end in _total: their names are what stock Node.js dashboards query. */
const STANDARD_TOTAL_GAUGES = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
const PEER_ID = /\b(12D3KooW[1-9A-HJ-NP-Za-km-z]{44}|Qm[1-9A-HJ-NP-Za-km-z]{44})\b/

t.test('a leader after a burst: the dashboard resolves, labels are bounded, budget gauges match status', async (t) => {
  const root = tempDir(t)
  const workDir = join(root, 'work')
  reapBurst(t, workDir)
  const swarmKeyFile = writeSwarmKey(root)
  const config = {
    replica,
    burst: { cost_budget: 1.0, check_interval: '2s' },
    providers: [{ name: 'workstation', kind: 'local', cost_per_hour: 0.3, max_instances: 2, work_dir: workDir, replica: { models: ['llama3'], slots: 2, command: 'sim', sim } }]
  }
  const [leader] = await startJoined(t, root, [{ name: 'lead', swarmKeyFile, config }], 'star')
  const node = leader!
  await waitFor(async () => (await node.status()).leader === node.peerId, { timeoutMs: 10_000, what: 'the single voter to lead' })

  const burst = await node.call('burst', { count: 1 }, 60_000) as { answer: { decision: string, instances: string[] } }
  t.match(burst.answer, { decision: 'granted', instances: [/./] })
  const { value: member } = await waitFor(async () => {
    const s = await node.status()
    return s.members.find((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true) ?? null
  }, { timeoutMs: 30_000, what: 'the burst member to be alive and ready' })
  // The ledger hears of ready from the leader's next tick.
  await waitFor(async () => (await node.metric('meshd_burst_instances', { state: 'ready' })) === 1, { timeoutMs: 10_000, what: 'the ledger to record the burst instance ready' })

  const client = new OpenAI({ baseURL: `${node.url}/v1`, apiKey: 'x', maxRetries: 0 })
  await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'hi' }] })
  const stream = await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'hi' }], stream: true })
  for await (const _ of stream) { /* drain */ }
  const unknown = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (err: unknown) => err)
  t.match(unknown, { status: 404 }, 'an unknown model is refused')

  const text = await node.metricsText()
  const status = await node.status()
  const fams = families(text)
  const all = samples(text)
  const ids = new Set(status.members.map((m) => m.id))

  t.test('(a) every series the dashboard queries is exported', async (t) => {
    const { names, exprs } = dashboardMetricNames()
    t.ok(exprs >= 20 && names.length >= 20, `${exprs} queries over ${names.length} series`)
    for (const n of names) t.ok(familyOf(n, fams) !== undefined, `${n} is exported`)
  })

  t.test('(b) no label carries a peer id', async (t) => {
    t.ok(ids.size >= 2, 'the leader and the burst node are members')
    const bad = all.filter((s) => Object.values(s.labels).some((v) => ids.has(v) || PEER_ID.test(v)))
    t.same(bad.map((s) => `${s.name}${JSON.stringify(s.labels)}`), [], 'no sample has a peer id in a label')
    t.equal(sumMetric(text, 'meshd_member_slots', { member: member.name }), 2, 'load per member is by node name, burst members included')
    t.equal(sumMetric(text, 'meshd_member_slots', { member: 'lead' }), 4)
  })

  t.test('(c) names: process_*/nodejs_* unprefixed, no meshd_ gauge named _total, stream errors apart from status codes', async (t) => {
    for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) t.ok(fams.has(n), `${n}`)
    t.same([...fams.keys()].filter((n) => /^meshd_(process|nodejs)_/.test(n)), [], 'no doubled prefix')
    const totalGauges = [...fams].filter(([n, type]) => type === 'gauge' && n.endsWith('_total')).map(([n]) => n)
    t.same(totalGauges.filter((n) => n.startsWith('meshd_') || !STANDARD_TOTAL_GAUGES.has(n)), [], `gauges named _total are prom-client's standard ones only (${totalGauges.join(', ')})`)
    for (const [n, type] of fams) if (n.endsWith('_total') && n.startsWith('meshd_')) t.equal(type, 'counter', `${n} is a counter`)
    const codes = new Set(all.filter((s) => s.name === 'meshd_http_requests_total').map((s) => s.labels.code))
    t.ok([...codes].every((c) => /^\d{3}$/.test(c ?? '')), `code is an HTTP status: ${[...codes].join(', ')}`)
    t.equal(sumMetric(text, 'meshd_http_requests_total', { route: 'chat_completions', code: '200', model: 'llama3' }), 2, 'two answered, labelled by route and model')
    t.equal(sumMetric(text, 'meshd_http_requests_total', { route: 'chat_completions', code: '404', model: 'other' }), 1, 'an unknown model is "other", not what the client sent')
    t.ok(fams.get('meshd_http_stream_errors_total') === 'counter', 'stream errors have their own counter')
    const les = all.filter((s) => s.name === 'meshd_request_duration_seconds_bucket').map((s) => s.labels.le)
    t.ok(les.includes('600'), `duration buckets reach http.request_timeout (10 min): ${[...new Set(les)].join(' ')}`)
    t.equal(sumMetric(text, 'meshd_request_ttft_seconds_count', { model: 'llama3' }), 2, 'TTFT observed for both answers')
  })

  t.test('(d) leader, term, voters, spend, budget and instances on the leader', async (t) => {
    t.equal(sumMetric(text, 'meshd_leader'), 1, 'meshd_leader 1')
    t.equal(sumMetric(text, 'meshd_term'), status.term, `meshd_term ${status.term}, as status says`)
    t.equal(sumMetric(text, 'meshd_voters'), 1)
    t.equal(sumMetric(text, 'meshd_voters_reachable'), 1)
    t.equal(sumMetric(text, 'meshd_burst_budget_per_hour'), 1, 'budget 1.00/h')
    t.equal(sumMetric(text, 'meshd_burst_spend_per_hour'), 0.3, 'spend 0.30/h: one instance held')
    t.equal(status.budget?.spend_per_hour, 0.3, 'status says the same')
    const today = sumMetric(text, 'meshd_burst_spend_today')
    t.ok(today > 0 && today <= (status.budget?.spend_today ?? 0) + 1e-9 && today <= sumMetric(text, 'meshd_burst_spend_month'), `spent today ${today}, this month at least as much`)
    t.equal(sumMetric(text, 'meshd_burst_instances', { provider: 'workstation', state: 'ready' }), 1, 'one ready burst instance')
    t.equal(sumMetric(text, 'meshd_burst_instances', { provider: 'workstation' }), 1, 'and no other')
    t.equal(all.filter((s) => s.name === 'meshd_burst_instances').length, 6, 'every billing state reported for the provider, 0 included')
    t.equal(sumMetric(text, 'meshd_burst_decisions_total', { kind: 'burst', outcome: 'granted', reason: 'within_limits' }), 1, 'the burst decision counted')
    t.equal(sumMetric(text, 'meshd_burst_launches_total', { provider: 'workstation' }), 1, 'one launch')
    t.equal(sumMetric(text, 'meshd_burst_launch_failures_total', { provider: 'workstation' }), 0, 'no failure (the series exist at 0)')
  })

  t.test('docs/metrics.md lists exactly the meshd_ series exported, with their types', async (t) => {
    const documented = documentedSeries()
    const exported = new Map([...fams].filter(([n]) => n.startsWith('meshd_')))
    t.same([...exported.keys()].filter((n) => !documented.has(n)).sort(), [], 'every exported series is documented')
    t.same([...documented.keys()].filter((n) => !exported.has(n)).sort(), [], 'every documented series is exported')
    for (const [n, type] of exported) if (documented.has(n)) t.equal(documented.get(n), type, `${n}: ${type}`)
  })

  t.test('the burst node (not a voter): not the leader, no budget series', async (t) => {
    const res = await fetch(`http://${member.http}/metrics`)
    const burstText = await res.text()
    t.equal(sumMetric(burstText, 'meshd_leader'), 0)
    t.equal(sumMetric(burstText, 'meshd_term'), status.term, 'knows the term from the voters\' heartbeats')
    t.equal(sumMetric(burstText, 'meshd_voters_reachable'), 1, 'sees the one voter')
    t.notOk(families(burstText).has('meshd_burst_spend_per_hour'), 'no ledger, no spend gauges')
  })
})
