/**
 * The workload generator of bench/traffic.ts: reproducible, as bursty and as
 * heavy-tailed as it claims, and rescaled to the load it is asked for.
 */
import t from 'tap'
import { generate, gammaGaps, mulberry32, cv, offeredLoad, rescaleToLoad, windowAtLoad, arrivalRate, parseAzureTrace, type ReplicaSpeed } from '../../bench/traffic.ts'
import { quantile } from '../../bench/stats.ts'

const replicas: ReplicaSpeed[] = [
  { slots: 4, ttft_ms: 50, tokens_per_second: 40 },
  { slots: 4, ttft_ms: 50, tokens_per_second: 40 },
  { slots: 4, ttft_ms: 150, tokens_per_second: 40 / 3 }
]

t.test('same seed, same trace; another seed, another trace', async (t) => {
  t.same(generate({ seed: 42, count: 500 }), generate({ seed: 42, count: 500 }))
  t.same(generate({ seed: 42, count: 500, mode: 'onoff' }), generate({ seed: 42, count: 500, mode: 'onoff' }))
  t.notSame(generate({ seed: 42, count: 500 }), generate({ seed: 43, count: 500 }))
})

t.test('inter-arrival CV within ±25% of the requested one over 20 000 samples', async (t) => {
  for (const want of [0.5, 1, 3]) {
    const got = cv(gammaGaps(mulberry32(11), 20_000, 100, want))
    t.ok(Math.abs(got - want) / want < 0.25, `cv ${want}: measured ${got.toFixed(3)}`)
    const trace = generate({ seed: 11, count: 20_001, cv: want })
    const gaps = trace.slice(1).map((a, i) => a.at_ms - trace[i]!.at_ms)
    t.ok(Math.abs(cv(gaps) - want) / want < 0.25, `generate, cv ${want}: measured ${cv(gaps).toFixed(3)}`)
  }
})

t.test('rescaling hits the target offered load within 1%', async (t) => {
  const trace = generate({ seed: 5, count: 2000 })
  for (const load of [0.5, 0.8, 1, 1.2]) {
    const got = offeredLoad(rescaleToLoad(trace, replicas, load), replicas)
    t.ok(Math.abs(got - load) / load < 0.01, `load ${load}: ${got.toFixed(4)}`)
    const w = windowAtLoad(trace, replicas, load, 40)
    t.ok(Math.abs(offeredLoad(w, replicas) - load) / load < 0.01, `window at ${load}: ${offeredLoad(w, replicas).toFixed(4)}`)
    t.ok(Math.abs(w[w.length - 1]!.at_ms - 40_000) < 40_000 * 0.05, `window at ${load} spans ${w[w.length - 1]!.at_ms.toFixed(0)} ms of 40 s`)
  }
  t.equal(arrivalRate(rescaleToLoad(trace, replicas, 1)) > 0, true)
})

t.test('output lengths are heavy-tailed and within their clip', async (t) => {
  const outs = generate({ seed: 3, count: 20_000 }).map((a) => a.output_tokens)
  const p50 = quantile(outs, 0.5)
  const p99 = quantile(outs, 0.99)
  t.ok(p99 / p50 > 5, `p99/p50 = ${p99}/${p50}`)
  t.ok(outs.every((x) => Number.isInteger(x) && x >= 1 && x <= 400))
})

t.test('Azure trace rows: header, ISO or seconds timestamps, sorted, zero tokens clipped', async (t) => {
  const rows = parseAzureTrace('TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.0,100,0\n2023-11-16 18:15:45.5,1,2\n')
  t.same(rows.map((r) => [Math.round(r.at_ms), r.prompt_tokens, r.output_tokens]), [[0, 1, 2], [1181, 374, 44], [4500, 100, 1]])
  t.same(parseAzureTrace('10.5,3,4\n12,5,6\n').map((r) => r.at_ms), [0, 1500])
  t.throws(() => parseAzureTrace('TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\n'), /line 2/)
})
