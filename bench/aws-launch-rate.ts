/**
 * bench/aws-launch-rate: how many launches per minute the aws provider
 * sustains against an EC2 endpoint that throttles, beside the same endpoint
 * without throttling, in one run. The provider (providers/aws) talks to the
 * fake EC2 of test/helpers/fake-ec2 through the real SDK; instances are
 * records there (nothing boots: this measures the control plane). Throttling
 * is EC2's own model, a token bucket per action: CreateFleet refilled at
 * `--rate` per second with a burst of `--burst` (EC2's default for
 * CreateFleet in a region is far higher; a small bucket shows the backoff).
 * `--concurrency` creates run at once, as a leader launching a burst does.
 *
 *   node_modules/.bin/node bench/aws-launch-rate.ts [--launches 60] [--concurrency 6] [--rate 1] [--burst 5]
 */
import { parseArgs } from 'node:util'
import { startFakeEc2 } from '../test/helpers/fake-ec2/index.ts'
import { awsProvider, Ec2Clients } from '../providers/aws/index.ts'
import type { LaunchRequest, Offering } from '../providers/types.ts'
import { generateSwarmKey } from '../mesh/swarm-key.ts'
import { median } from './stats.ts'
import { offlineAws } from '../test/helpers/aws-env.ts'

const { values } = parseArgs({ options: { launches: { type: 'string', default: '60' }, concurrency: { type: 'string', default: '6' }, rate: { type: 'string', default: '1' }, burst: { type: 'string', default: '5' }, help: { type: 'boolean', short: 'h' } } })
if (values.help === true) {
  console.log('usage: node_modules/.bin/node bench/aws-launch-rate.ts [--launches 60] [--concurrency 6] [--rate 1] [--burst 5]')
  process.exit(0)
}
offlineAws()
const launches = Number(values.launches)
const concurrency = Number(values.concurrency)
const swarmKey = generateSwarmKey()

interface Arm { name: string, perMinute: number, failed: number, createFleetCalls: number, throttled: number, launchMs: number[] }

async function arm (name: string, throttle: { perSecond: number, burst: number } | null): Promise<Arm> {
  const teardowns: Array<() => void | Promise<void>> = []
  const t = { teardown: (fn: () => void | Promise<void>) => { teardowns.push(fn) } }
  try {
    const fake = await startFakeEc2(t, { zones: { 'us-east-1': ['us-east-1a', 'us-east-1b'] } })
    fake.setSpotPrice('c7a.large', 'us-east-1a', 0.03)
    fake.setSpotPrice('c7a.large', 'us-east-1b', 0.03)
    let throttled = 0
    const clients = new Ec2Clients({ endpoint: fake.url, onRetry: (_r, code) => { if (code === 'RequestLimitExceeded') throttled++ } })
    const p = awsProvider({
      name: 'aws-spot', cluster: 'bench', regions: ['us-east-1'], instanceTypes: ['c7a.large'], imageIds: { 'us-east-1': 'ami-0123456789abcdef0' },
      endpoint: fake.url, zones: { 'us-east-1': ['us-east-1a', 'us-east-1b'] }, bundle: { url: `${fake.url}/files/none`, sha256: 'f'.repeat(64) },
      swarmKeyText: () => swarmKey, onDemandPrices: { 'c7a.large': 0.1 }, clients
    })
    const offerings = (await p.offerings()).filter((o) => o.spot && o.available)
    if (throttle !== null) fake.throttleRate({ ...throttle, actions: ['CreateFleet'] })
    const before = fake.calls('CreateFleet')
    let next = 0
    let failed = 0
    const launchMs: number[] = []
    const t0 = performance.now()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < launches) {
        const n = next++
        const o: Offering = offerings[n % offerings.length]!
        const req: LaunchRequest = { key: `b${n}`, cluster: 'bench', offering: o, replica: { models: ['m'], slots: 1, command: 'sim' }, node: { name: `burst-b${n}`, config: {} }, bootstrap: { peers: [] } }
        const s = performance.now()
        try {
          await p.create(req)
          launchMs.push(performance.now() - s)
        } catch {
          failed++
        }
      }
    }))
    const elapsed = performance.now() - t0
    const ok = launchMs.length
    p.close()
    return { name, perMinute: ok / (elapsed / 60_000), failed, createFleetCalls: fake.calls('CreateFleet') - before, throttled, launchMs }
  } finally {
    for (const fn of teardowns.reverse()) { try { await fn() } catch {} }
  }
}

const rate = Number(values.rate)
const burst = Number(values.burst)
const results = [await arm('no throttling', null), await arm(`throttled: CreateFleet ${rate}/s, burst ${burst}`, { perSecond: rate, burst })]
console.log(`\n${launches} launches, ${concurrency} at a time\n`)
console.log('| endpoint | launches per minute | failed (provider gave up) | CreateFleet calls | throttled answers retried | median launch |')
console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
for (const r of results) console.log(`| ${r.name} | ${r.perMinute.toFixed(0)} | ${r.failed} | ${r.createFleetCalls} | ${r.throttled} | ${median(r.launchMs).toFixed(0)} ms |`)
console.log(`\nthrottled / unthrottled: ${(results[1]!.perMinute / results[0]!.perMinute).toFixed(3)}; the bucket allows at most ${(rate * 60 + burst).toFixed(0)} CreateFleet calls in the first minute`)
