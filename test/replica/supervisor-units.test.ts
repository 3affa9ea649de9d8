/**
 * The supervisor's pure parts on tables and a fake clock: the Prometheus
 * parser, the engine-load reader, the back-off schedule, the readiness
 * probe's state machine, output bounding, and the launch plan.
 */
import t from 'tap'
import { parsePrometheusText, parseValue } from '../../daemon/replica/prom-text.ts'
import { engineLoadFromText } from '../../daemon/replica/engine-metrics.ts'
import { afterFailure, DEFAULT_BACKOFF, INITIAL_BACKOFF, restartDelayMs, type BackoffState } from '../../daemon/replica/backoff.ts'
import { initialProbeState, probeRules, probeStep, type ProbeOutcome, type ProbeRules, type ProbeState } from '../../daemon/replica/probe.ts'
import { captureOutput, lastWords, LineSplitter, TokenBucket, type OutputLog } from '../../daemon/replica/output.ts'
import { planLaunch, replicaConfigProblems, SIM_MAIN, shellQuote, urlFor } from '../../daemon/replica/launch.ts'
import { describeExit } from '../../daemon/replica/process.ts'
import { defaultName } from '../../daemon/replica/supervisor.ts'
import { EngineCounters, renderMetrics } from '../../daemon/replica/sim/metrics.ts'
import { replicaConfig } from './supervisor-helpers.ts'

// ---------------------------------------------------------------------------
// Prometheus text

t.test('prometheus text: one sample per line, as written', async (t) => {
  type Row = [string, string, Array<{ name: string, labels?: Record<string, string>, value: number, timestamp?: number }>, number?]
  const rows: Row[] = [
    ['bare', 'up 1', [{ name: 'up', value: 1 }]],
    ['colons in the name', 'llamacpp:requests_processing 3', [{ name: 'llamacpp:requests_processing', value: 3 }]],
    ['labels', 'm{a="x",b="y"} 2', [{ name: 'm', labels: { a: 'x', b: 'y' }, value: 2 }]],
    ['trailing comma', 'm{a="x",} 2', [{ name: 'm', labels: { a: 'x' }, value: 2 }]],
    ['empty braces', 'm{} 2', [{ name: 'm', value: 2 }]],
    ['spaces around', '  m { a = "x" , b="y" }   7  ', [{ name: 'm', labels: { a: 'x', b: 'y' }, value: 7 }]],
    ['tabs', 'm\t4', [{ name: 'm', value: 4 }]],
    ['escaped quote, backslash, newline', String.raw`m{p="a\"b\\c\nd"} 1`, [{ name: 'm', labels: { p: 'a"b\\c\nd' }, value: 1 }]],
    ['an unknown escape is kept', String.raw`m{p="C:\temp"} 1`, [{ name: 'm', labels: { p: 'C:\\temp' }, value: 1 }]],
    ['braces, commas and = inside a value', 'm{p="a},b=c{"} 1', [{ name: 'm', labels: { p: 'a},b=c{' }, value: 1 }]],
    ['timestamp', 'm 1 1700000000000', [{ name: 'm', value: 1, timestamp: 1700000000000 }]],
    ['exponent', 'm 1.5e+06', [{ name: 'm', value: 1.5e6 }]],
    ['negative fraction', 'm -0.25', [{ name: 'm', value: -0.25 }]],
    ['leading dot', 'm .5', [{ name: 'm', value: 0.5 }]],
    ['+Inf', 'h_bucket{le="+Inf"} +Inf', [{ name: 'h_bucket', labels: { le: '+Inf' }, value: Infinity }]],
    ['-Inf', 'm -Inf', [{ name: 'm', value: -Infinity }]],
    ['exemplar ignored', 'h_bucket{le="0.5"} 3 # {trace_id="abc"} 0.4 1.7e9', [{ name: 'h_bucket', labels: { le: '0.5' }, value: 3 }]],
    ['Prometheus 3 quoted name', '{"my.metric",a="x"} 5', [{ name: 'my.metric', labels: { a: 'x' }, value: 5 }]],
    ['quoted label name', 'm{"label.dotted"="v"} 5', [{ name: 'm', labels: { 'label.dotted': 'v' }, value: 5 }]],
    ['comments and metadata', '# HELP m help text with "quotes"\n# TYPE m gauge\n# just a comment\nm 1\n# EOF', [{ name: 'm', value: 1 }]],
    ['CRLF and blank lines', 'a 1\r\n\r\n   \r\nb 2\r\n', [{ name: 'a', value: 1 }, { name: 'b', value: 2 }]],
    ['no final newline', 'a 1\nb 2', [{ name: 'a', value: 1 }, { name: 'b', value: 2 }]],
    ['missing value', 'm', [], 1],
    ['missing value after labels', 'm{a="x"}', [], 1],
    ['unterminated quote', 'm{a="x} 1', [], 1],
    ['unquoted label value', 'm{a=x} 1', [], 1],
    ['garbage value', 'm 1.2.3', [], 1],
    ['word value', 'm yes', [], 1],
    ['garbage after the timestamp', 'm 1 2 3', [], 1],
    ['bad lines do not stop the rest', 'good 1\n}{ 2\nalso_good 3', [{ name: 'good', value: 1 }, { name: 'also_good', value: 3 }], 1]
  ]
  for (const [what, text, want, errors = 0] of rows) {
    const r = parsePrometheusText(text)
    t.same(r.samples.map((s) => ({ name: s.name, labels: { ...s.labels }, value: s.value, ...(s.timestamp !== undefined ? { timestamp: s.timestamp } : {}) })),
      want.map((w) => ({ name: w.name, labels: { ...(w.labels ?? {}) }, value: w.value, ...(w.timestamp !== undefined ? { timestamp: w.timestamp } : {}) })), what)
    t.equal(r.errors, errors, `${what}: errors`)
  }
})

t.test('prometheus text: NaN, the __proto__ label, the name filter, error samples', async (t) => {
  const nan = parsePrometheusText('m NaN\nn nan')
  t.ok(nan.samples.every((s) => Number.isNaN(s.value)), 'NaN in any case')
  const proto = parsePrometheusText('m{__proto__="x",a="y"} 1').samples[0]!
  t.equal(Object.getPrototypeOf(proto.labels), null, 'labels have no prototype')
  t.equal(proto.labels.__proto__, 'x')
  const text = 'keep{a="1"} 1\nskip{a="1} 2\nkeep 3\n{"skip.me"} 4\n{"keep"} 5'
  const filtered = parsePrometheusText(text, { names: new Set(['keep']) })
  t.same(filtered.samples.map((s) => s.value), [1, 3, 5], 'only the wanted names')
  t.equal(filtered.errors, 0, 'skipped lines are not parsed, so not errors')
  const bad = parsePrometheusText(`a\nb\nc\nd\n${'x'.repeat(500)}`)
  t.equal(bad.errors, 5)
  t.equal(bad.firstErrors.length, 3, 'at most three kept')
  t.same([parseValue('0x1F'), parseValue('-0x10'), parseValue('+Infinity'), parseValue('1e'), parseValue('')], [31, -16, Infinity, null, null])
})

// ---------------------------------------------------------------------------
// Engine load

t.test('engine load: the simulator publishes llama.cpp and vLLM names; counted once', async (t) => {
  const text = renderMetrics(new EngineCounters(), { running: 3, waiting: 2, slots: 4, queueLimit: 10, draining: false, ready: true }, 'llama3')
  t.same(engineLoadFromText(text), { source: 'llama.cpp', running: 3, waiting: 2, kvCache: 0.75 })
})

t.test('engine load: families and label sets', async (t) => {
  const rows: Array<[string, string, ReturnType<typeof engineLoadFromText>]> = [
    ['vLLM, summed over models and engines; KV averaged',
      'vllm:num_requests_running{model_name="a",engine="0"} 2\nvllm:num_requests_running{model_name="a",engine="1"} 3\n' +
      'vllm:num_requests_waiting{model_name="a",engine="0"} 1\nvllm:num_requests_waiting{model_name="a",engine="1"} 4\n' +
      'vllm:kv_cache_usage_perc{engine="0"} 0.2\nvllm:kv_cache_usage_perc{engine="1"} 0.6\n',
      { source: 'vllm', running: 5, waiting: 5, kvCache: 0.4 }],
    ['vLLM before 0.10: gpu_cache_usage_perc',
      'vllm:num_requests_running{model_name="a"} 1\nvllm:num_requests_waiting{model_name="a"} 0\nvllm:gpu_cache_usage_perc{model_name="a"} 0.5',
      { source: 'vllm', running: 1, waiting: 0, kvCache: 0.5 }],
    ['llama.cpp without a KV gauge', 'llamacpp:requests_processing 2\nllamacpp:requests_deferred 7', { source: 'llama.cpp', running: 2, waiting: 7 }],
    ['only a waiting gauge', 'vllm:num_requests_waiting 4', { source: 'vllm', running: 0, waiting: 4 }],
    ['SGLang', 'sglang:num_running_reqs{tp_rank="0"} 6\nsglang:num_queue_reqs{tp_rank="0"} 1\nsglang:token_usage 0.3', { source: 'sglang', running: 6, waiting: 1, kvCache: 0.3 }],
    ['TGI', 'tgi_batch_current_size 8\ntgi_queue_size 2', { source: 'tgi', running: 8, waiting: 2 }],
    ['NaN samples ignored, KV clamped', 'vllm:num_requests_running NaN\nvllm:num_requests_running{engine="1"} 2\nvllm:kv_cache_usage_perc 1.7', { source: 'vllm', running: 2, waiting: 0, kvCache: 1 }],
    ['a NaN gauge alone still names the engine', 'llamacpp:requests_processing NaN', { source: 'llama.cpp', running: 0, waiting: 0 }],
    ['nothing known: null', 'process_cpu_seconds_total 12\n# TYPE vllm:num_requests_running gauge\n', null],
    ['empty: null', '', null]
  ]
  for (const [what, text, want] of rows) t.same(engineLoadFromText(text), want, what)
})

// ---------------------------------------------------------------------------
// Back-off

t.test('back-off: 1 s doubling to 60 s', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 8, 50, 5000].map((n) => restartDelayMs(DEFAULT_BACKOFF, n)),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000])
  let s: BackoffState = INITIAL_BACKOFF
  const delays: number[] = []
  for (let i = 0; i < 8; i++) {
    const r = afterFailure(DEFAULT_BACKOFF, s, 0)
    s = r.state
    delays.push(r.delayMs)
  }
  t.same(delays, [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000], 'crash after crash')
})

t.test('back-off: reset by a run that was ready long enough, not by a short one', async (t) => {
  const s: BackoffState = { failures: 6 }
  t.same(afterFailure(DEFAULT_BACKOFF, s, 59_999), { state: { failures: 7 }, delayMs: 60_000 }, 'ready 59.999 s: still backing off')
  t.same(afterFailure(DEFAULT_BACKOFF, s, 60_000), { state: { failures: 1 }, delayMs: 1000 }, 'ready 60 s: back to 1 s')
  t.same(afterFailure({ ...DEFAULT_BACKOFF, initialMs: 200, maxMs: 1000 }, { failures: 2 }, 0).delayMs, 800, 'scaled policy')
})

// ---------------------------------------------------------------------------
// Readiness probe on a fake clock

const RULES: ProbeRules = probeRules({ path: '/health', post_data: null, initial_delay_seconds: 10, timeout_seconds: 2, period_seconds: 5 })
const PASS: ProbeOutcome = { ok: true }
const FAIL: ProbeOutcome = { ok: false, detail: 'GET /health answered 503' }
const WAIT: ProbeOutcome = { ok: false, detail: 'waiting for the engine to report its port', reached: false }

t.test('probe rules from the config: seconds to ms, starting period min(period, 1 s), SkyServe threshold', async (t) => {
  t.same(RULES, { path: '/health', postData: null, initialDelayMs: 10_000, periodMs: 5000, timeoutMs: 2000, startingPeriodMs: 1000, failureThresholdMs: 180_000, minFailedProbes: 3, portWaitMs: 60_000 })
  t.equal(probeRules({ path: '/', post_data: { a: 1 }, initial_delay_seconds: 0, timeout_seconds: 1, period_seconds: 0.2 }).startingPeriodMs, 200, 'never slower than the period')
})

t.test('probe table: one step from each row', async (t) => {
  const fresh = initialProbeState(0)
  const passed: ProbeState = { since: 0, passedAt: 3000, ready: true, failingSince: null, failedProbes: 0 }
  const failing: ProbeState = { since: 0, passedAt: 3000, ready: false, failingSince: 20_000, failedProbes: 0 }
  const triedTen: ProbeState = { ...fresh, failedProbes: 10 }
  const triedOnce: ProbeState = { ...fresh, failedProbes: 1 }
  type Row = [string, ProbeState, ProbeOutcome, number, { phase: string, ready: boolean, restart: boolean, nextInMs: number, reason: RegExp }]
  const rows: Row[] = [
    ['first probe passes at once: ready (no waiting out the initial delay)', fresh, PASS, 500, { phase: 'ready', ready: true, restart: false, nextInMs: 5000, reason: /^ready$/ }],
    ['failing within the initial delay: starting, not a failure', fresh, FAIL, 9999, { phase: 'starting', ready: false, restart: false, nextInMs: 1000, reason: /^starting \(10 s of initial_delay_seconds 10 s\): GET \/health answered 503$/ }],
    ['failing at the end of the initial delay, probed 2 s before: starting', triedOnce, FAIL, 10_000, { phase: 'starting', ready: false, restart: false, nextInMs: 1000, reason: /^starting \(probe 2 of at least 3 before a restart\): GET/ }],
    ['not reported its port at the end of the initial delay: starting', triedTen, WAIT, 10_000, { phase: 'starting', ready: false, restart: false, nextInMs: 1000, reason: /^starting \(10 s of 60 s for the engine to report its port\): waiting/ }],
    ['not reported its port after 60 s: restart', fresh, WAIT, 60_000, { phase: 'unready', ready: false, restart: true, nextInMs: 5000, reason: /^not ready within 60 s: waiting for the engine to report its port$/ }],
    ['failing at the end of the initial delay: restart', triedTen, FAIL, 10_000, { phase: 'unready', ready: false, restart: true, nextInMs: 5000, reason: /^not ready within initial_delay_seconds 10 s: GET \/health answered 503$/ }],
    ['ready, then one failure: out of traffic at once', passed, FAIL, 30_000, { phase: 'unready', ready: false, restart: false, nextInMs: 5000, reason: /^readiness probe failed: GET/ }],
    ['failing for 179.9 s after having passed: still waiting', failing, FAIL, 199_900, { phase: 'unready', ready: false, restart: false, nextInMs: 5000, reason: /failed for 180 s/ }],
    ['failing for 180 s after having passed: restart', failing, FAIL, 200_000, { phase: 'unready', ready: false, restart: true, nextInMs: 5000, reason: /failed for 180 s/ }],
    ['failing, then a pass: ready again', failing, PASS, 50_000, { phase: 'ready', ready: true, restart: false, nextInMs: 5000, reason: /^ready$/ }],
    ['after having passed, the initial delay no longer matters', { ...passed, since: 0 }, FAIL, 1_000_000, { phase: 'unready', ready: false, restart: false, nextInMs: 5000, reason: /^readiness probe failed/ }]
  ]
  for (const [what, state, outcome, at, want] of rows) {
    const step = probeStep(RULES, state, outcome, at)
    t.same({ phase: step.phase, ready: step.ready, restart: step.restart !== null, nextInMs: step.nextInMs }, { phase: want.phase, ready: want.ready, restart: want.restart, nextInMs: want.nextInMs }, what)
    t.match(step.reason, want.reason, `${what}: reason`)
  }
  const p = probeStep(RULES, failing, PASS, 50_000)
  t.same(p.state, { since: 0, passedAt: 3000, ready: true, failingSince: null, failedProbes: 0 }, 'a pass ends the failing streak, keeps the first pass')
  t.equal(probeStep(RULES, fresh, WAIT, 500).state.failedProbes, 0, 'a probe that did not reach the engine is not counted as one that failed')
})

/** Runs the prober on a fake clock against an engine whose health is a function of time. */
function simulate (rules: ProbeRules, healthy: (at: number) => boolean, untilMs: number): Array<{ at: number, ready: boolean, phase: string, restart: boolean }> {
  let state = initialProbeState(0)
  const out: Array<{ at: number, ready: boolean, phase: string, restart: boolean }> = []
  for (let at = 0; at <= untilMs;) {
    const step = probeStep(rules, state, healthy(at) ? PASS : { ok: false, detail: 'down' }, at)
    state = step.state
    out.push({ at, ready: step.ready, phase: step.phase, restart: step.restart !== null })
    if (step.restart !== null) break
    at += step.nextInMs
  }
  return out
}

t.test('probe timeline: an engine up at 2.3 s is ready at the 3 s probe, then probed every period', async (t) => {
  const tl = simulate(RULES, (at) => at >= 2300, 20_000)
  t.same(tl.map((p) => p.at), [0, 1000, 2000, 3000, 8000, 13_000, 18_000])
  t.same(tl.map((p) => p.ready), [false, false, false, true, true, true, true])
  t.same(tl.slice(0, 3).map((p) => p.phase), ['starting', 'starting', 'starting'])
})

t.test('probe timeline: an engine that never comes up is restarted at the initial delay', async (t) => {
  const tl = simulate(RULES, () => false, 60_000)
  t.equal(tl.length, 11, 'probes at 0, 1 … 10 s')
  t.same(tl.at(-1), { at: 10_000, ready: false, phase: 'unready', restart: true })
  t.ok(tl.slice(0, -1).every((p) => p.phase === 'starting' && !p.restart), 'nothing before')
})

t.test('probe timeline: a blip takes it out for one period; a long outage restarts it after 180 s', async (t) => {
  const blip = simulate(RULES, (at) => at < 20_000 || at >= 25_000, 40_000)
  const around = blip.filter((p) => p.at >= 15_000 && p.at <= 35_000).map((p) => [p.at, p.ready])
  t.same(around, [[15_000, true], [20_000, false], [25_000, true], [30_000, true], [35_000, true]])

  const outage = simulate(RULES, (at) => at < 20_000, 400_000)
  const last = outage.at(-1)!
  t.equal(last.restart, true)
  t.equal(last.at, 200_000, 'first failure at 20 s, restart once failing for 180 s')
})

t.test('probe timeline: initial delay 0 gives the engine three probes, not only the one at the spawn; a first pass still wins', async (t) => {
  const rules = probeRules({ path: '/', post_data: null, initial_delay_seconds: 0, timeout_seconds: 1, period_seconds: 1 })
  // Before: the probe at the instant of the spawn, which no engine can pass, restarted every run, forever.
  t.same(simulate(rules, () => false, 10_000), [
    { at: 0, ready: false, phase: 'starting', restart: false },
    { at: 1000, ready: false, phase: 'starting', restart: false },
    { at: 2000, ready: false, phase: 'unready', restart: true }
  ])
  t.same(simulate(rules, (at) => at >= 800, 1000).map((p) => p.ready), [false, true], 'an engine up at 0.8 s is ready at the next probe')
  t.same(simulate(rules, () => true, 0), [{ at: 0, ready: true, phase: 'ready', restart: false }])
  // The simulator: no probe can be sent until it reports its port.
  let state = initialProbeState(0)
  for (const at of [0, 1000, 2000, 30_000]) {
    const step = probeStep(rules, state, WAIT, at)
    t.equal(step.restart, null, `waiting for the port at ${at} ms: not restarted`)
    state = step.state
  }
  t.same(probeStep(rules, state, PASS, 30_100).ready, true, 'then its first probe passes')
})

// ---------------------------------------------------------------------------
// Output

t.test('line splitter: chunks, CRLF, the last line, over-long lines cut and measured', async (t) => {
  const got: Array<[string, number | null]> = []
  const s = new LineSplitter(10, (line, from) => { got.push([line, from]) })
  s.push('ab')
  s.push('c\r\nde')
  s.push('f\n\n')
  s.push('0123456789ABCDEF')
  s.push('GHIJ\nshort')
  s.end()
  t.same(got, [['abc', null], ['def', null], ['', null], ['0123456789', 20], ['short', null]])
})

t.test('line splitter: memory stays bounded by one line whatever arrives without a newline', async (t) => {
  let n = 0
  const s = new LineSplitter(1000, (line, from) => { n++; t.equal(line.length, 1000); t.equal(from, 5_000_000) })
  for (let i = 0; i < 5000; i++) s.push('y'.repeat(1000))
  t.ok((s as unknown as { buf: string }).buf.length <= 1000, 'buffer holds at most one cut line')
  s.push('\n')
  t.equal(n, 1)
})

t.test('token bucket on a fake clock', async (t) => {
  let now = 0
  const b = new TokenBucket(10, 3, () => now)
  t.same([b.take(), b.take(), b.take(), b.take()], [true, true, true, false], 'burst of 3')
  now = 99
  t.equal(b.take(), false, '0.99 tokens')
  now = 100
  t.equal(b.take(), true, 'one token per 100 ms')
  now = 100_000
  t.same([b.take(), b.take(), b.take(), b.take()], [true, true, true, false], 'refill capped at the burst')
})

t.test('output capture: JSON at its own level, text as {line}, drops counted and reported', async (t) => {
  const calls: Array<[string, Record<string, unknown>, string | undefined]> = []
  const rec = (level: string) => (o: object, msg?: string) => { calls.push([level, o as Record<string, unknown>, msg]) }
  const log: OutputLog = { trace: rec('trace'), debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error'), fatal: rec('fatal') }
  let now = 0
  let dropped = 0
  const cap = captureOutput(log, { maxLineChars: 50, linesPerSecond: 1, burst: 4, tailLines: 2 }, () => now, (n) => { dropped += n })
  const seen: string[] = []
  const out = cap.stream('stdout', (l) => { seen.push(l) })
  const err = cap.stream('stderr')
  out.push('{"level":50,"msg":"boom","pid":9,"time":1}\n')
  err.push('{"level":"warn","message":"careful"}\nplain words\n')
  err.push(`${'z'.repeat(80)}\n`)
  err.push('dropped one\ndropped two\n')
  now = 1000
  out.push('[1,2]\n')
  t.same(calls, [
    ['error', { stream: 'stdout', json: { level: 50, msg: 'boom', pid: 9, time: 1 } }, 'boom'],
    ['warn', { stream: 'stderr', json: { level: 'warn', message: 'careful' } }, 'careful'],
    ['info', { stream: 'stderr', line: 'plain words' }, 'replica output'],
    ['info', { stream: 'stderr', line: 'z'.repeat(50), truncated: 80 }, 'replica output'],
    ['warn', { dropped: 2 }, 'replica output lines dropped (rate limit)'],
    ['info', { stream: 'stdout', line: '[1,2]' }, 'replica output']
  ])
  t.equal(dropped, 2)
  t.equal(cap.dropped(), 2)
  t.same(seen, ['{"level":50,"msg":"boom","pid":9,"time":1}', '[1,2]'], 'the stdout hook sees every line, dropped or not')
  t.same(cap.tail(), ['dropped two', '[1,2]'], 'the tail keeps the last lines, dropped ones too')
})

t.test('last words: the last error-looking line, JSON by its message', async (t) => {
  t.equal(lastWords([]), null)
  t.equal(lastWords(['', '  ']), null)
  t.equal(lastWords(['loading', 'still loading']), 'still loading', 'no error: the last line')
  t.equal(lastWords(['llama_model_load: error loading model: file not found', 'main: exiting', '']), 'llama_model_load: error loading model: file not found')
  t.equal(lastWords(['meshd sim: Unknown option \'--x\'', 'usage: node main.ts [options]', '  --fail-rate F   fraction answered 500', '  --slots N']), 'meshd sim: Unknown option \'--x\'', 'indented help text does not count')
  t.equal(lastWords(['{"level":50,"msg":"could not listen","err":"EADDRINUSE"}', '{"level":30,"msg":"bye"}']), 'could not listen: EADDRINUSE')
  t.equal(lastWords(['Traceback (most recent call last):', '  File "x.py", line 1, in <module>', '    raise RuntimeError("unable")', 'RuntimeError: CUDA out of memory']), 'RuntimeError: CUDA out of memory')
})

// ---------------------------------------------------------------------------
// Launch plan and config checks

t.test('launch: the simulator with flags from the config, port 0 unless the url names one', async (t) => {
  const sim = planLaunch(replicaConfig({ command: 'sim', models: ['llama3', 'other'], slots: 3, sim: { ttft_ms: 5, tokens_per_second: 100, max_tokens: 8 } }), 'hel1-a', ['--ready-after-ms', '50'])
  t.same(sim, {
    kind: 'sim',
    host: '127.0.0.1',
    argv: [process.execPath, '--disable-warning=ExperimentalWarning', SIM_MAIN, '--host', '127.0.0.1', '--port', '0', '--models', 'llama3,other', '--slots', '3',
      '--ttft-ms', '5', '--tokens-per-second', '100', '--max-tokens', '8', '--name', 'hel1-a', '--ready-after-ms', '50']
  })
  const fixed = planLaunch(replicaConfig({ command: 'sim', models: ['m'], url: 'http://[::1]:9123' }), 'n')
  t.ok(fixed.kind === 'sim' && fixed.host === '::1' && fixed.argv.join(' ').includes('--host ::1 --port 9123'))
  t.same(planLaunch(replicaConfig({ command: 'llama-server -m m.gguf --port 9000', url: 'http://127.0.0.1:9000/', models: ['m'] }), 'n'),
    { kind: 'command', command: 'llama-server -m m.gguf --port 9000', url: 'http://127.0.0.1:9000' })
  t.same(planLaunch(replicaConfig({ url: 'http://10.0.0.5:8000', models: ['m'] }), 'n'), { kind: 'external', url: 'http://10.0.0.5:8000' })
  t.equal(urlFor('0.0.0.0', 5), 'http://127.0.0.1:5')
  t.equal(urlFor('::1', 5), 'http://[::1]:5')
})

t.test('config problems the schema does not see', async (t) => {
  const problems = (raw: Record<string, unknown>) => replicaConfigProblems(replicaConfig(raw)).map((p) => `${p.path.join('.')}: ${p.message}`)
  t.same(problems({ command: 'sim', models: ['m'] }), [])
  t.same(problems({ url: 'http://127.0.0.1:1', models: ['m'] }), [])
  // The schema rejects a command without url too; configs built in code (a
  // provider's replica spec) only meet this check.
  const noUrl = { ...replicaConfig({ command: 'vllm serve m', url: 'http://127.0.0.1:8000', models: ['m'] }), url: undefined }
  t.match(replicaConfigProblems(noUrl).map((p) => `${p.path.join('.')}: ${p.message}`), [/^url: expected `url`/], 'a command without url')
  t.match(problems({ command: 'sim', models: ['a,b'] }), [/^models\.0: /], 'commas break --models')
  t.match(problems({ command: 'sim', models: ['m'], url: 'http://127.0.0.1:1/v1' }), [/^url: the simulator serves at the root/])
  t.match(problems({ url: 'http://127.0.0.1:1?x=1', models: ['m'] }), [/^url: expected a base URL/])
  t.match(problems({ url: 'http://127.0.0.1:1', models: ['m'], readiness_probe: 'health' }), [/^readiness_probe\.path: /])
  t.throws(() => planLaunch(noUrl, 'n'), /replica\.url: expected `url`/)
})

t.test('names, exits and quoting', async (t) => {
  t.equal(defaultName(replicaConfig({ command: 'sim', models: ['m'] })), 'sim')
  t.equal(defaultName(replicaConfig({ command: 'CUDA_VISIBLE_DEVICES=0 exec /opt/llama/llama-server -m x', url: 'http://h:1', models: ['m'] })), 'llama-server')
  t.equal(defaultName(replicaConfig({ url: 'http://10.0.0.5:8000', models: ['m'] })), '10.0.0.5:8000')
  t.equal(describeExit({ code: 3, signal: null }), 'exited with code 3')
  t.equal(describeExit({ code: null, signal: 'SIGKILL' }), 'killed by SIGKILL')
  t.equal(describeExit({ code: 137, signal: null }), 'exited with code 137 (128+SIGKILL)')
  t.equal(describeExit({ code: null, signal: null, error: 'spawn EAGAIN' }), 'could not be started: spawn EAGAIN')
  t.same(['plain', "it's", 'a b', '$HOME', ''].map(shellQuote), ['plain', `'it'\\''s'`, `'a b'`, `'$HOME'`, `''`])
})
