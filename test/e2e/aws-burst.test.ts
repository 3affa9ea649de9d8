/**
 * The leader bursts onto EC2 — the fake EC2 endpoint of test/helpers/fake-ec2,
 * driven through the real @aws-sdk/client-ec2, whose instances are network
 * and mount namespaces that really run their user data: download the bundle,
 * check it, `meshd boot-ec2`, join. Three voters on the fake's bridge.
 *
 * - `burst --count 2 --provider aws-spot --wait --json` is granted; two spot
 *   instances carry the tags; both join, become ready and take traffic
 *   through a voter's front door; `burst --terminate --all` leaves none.
 * - A leader killed between CreateFleet and its ledger entry for the outcome
 *   (the fake holds CreateFleet's answers until the leader is dead): after
 *   failover exactly the decided number of instances exists.
 * - Spot refused in the cheapest zone: the instance comes up in the next;
 *   refused everywhere (with a reclaim of the running one) and
 *   dynamic_ondemand_fallback: on-demand, and the leader says why; spot back:
 *   a spot instance replaces the on-demand one, which is terminated.
 */
import t from 'tap'
import { tempDir } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { netnsMachinesAvailable } from '../helpers/fake-ec2/index.ts'
import { liveInstances, startAwsMesh } from '../helpers/aws-mesh.ts'
import { testBundle, type Bundle } from '../helpers/test-bundle.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { readyBurst, waitReadyBurst, servedBy } from '../helpers/burst.ts'
import type { MemberStatus } from '../../daemon/status.ts'

const skip = netnsMachinesAvailable()

let bundle: Bundle | null = null
t.before(async () => {
  if (skip !== false) return
  bundle = await testBundle()
})

t.test('burst --count 2 on spot: granted, tagged, joined, serving; terminate --all leaves none', { skip }, async (t) => {
  const { fake, nodes } = await startAwsMesh(t, tempDir(t), { bundle: bundle! })
  const t0 = performance.now()
  const r = await meshd(['burst', '--count', '2', '--provider', 'aws-spot', '--wait', '--json', '--config', nodes[1]!.configPath], { timeoutMs: 240_000 })
  t.equal(r.code, 0, r.code === 0 ? 'burst answered' : `${r.stdout}\n${r.stderr}`)
  t.match(JSON.parse(r.stdout), { decision: 'granted', granted: 2, provider: 'aws-spot' })
  const burst = await waitReadyBurst(nodes[0]!, 2)
  t.pass(`burst to two ready members in ${Math.round(performance.now() - t0)} ms`)

  const live = liveInstances(fake)
  t.equal(live.length, 2, 'two instances at EC2')
  for (const i of live) {
    t.equal(i.market, 'spot', `${i.id} is spot`)
    t.match(i.tags, { 'meshd:cluster': 'test', 'meshd:provider': 'aws-spot', 'meshd:key': /^d\d+-/, 'meshd:decision': /^d\d+/ }, `${i.id} carries the tags`)
  }
  t.same(new Set(burst.map((m) => m.instance?.id)), new Set(live.map((i) => i.id)), 'the members are those instances')

  const served = await servedBy(nodes[2]!.url)
  const ids = burst.map((m) => m.id)
  t.ok(ids.some((id) => served.has(id)), `burst instances take traffic (${ids.filter((id) => served.has(id)).length} of 2 served)`)

  const term = await meshd(['burst', '--terminate', '--all', '--json', '--config', nodes[0]!.configPath], { timeoutMs: 90_000 })
  t.equal(term.code, 0, term.stderr)
  const { ms } = await waitFor(() => fake.instances().every((i) => i.state === 'terminated'), { timeoutMs: 120_000, intervalMs: 200, what: 'every instance terminated' })
  t.pass(`every instance terminated ${Math.round(ms)} ms after terminate --all`)
  t.same(live.flatMap((i) => fake.pids(i.id)), [], 'nothing runs in the instances')
  const secret = (await import('node:fs')).readFileSync(nodes[0]!.spec.swarmKeyFile, 'utf8').trim().split('\n').pop()!
  t.notOk(nodes.some((n) => JSON.stringify(n.logs).includes(secret)), 'the swarm key is in no voter log')
})

// With ClientToken honoured, and without (not every EC2-compatible endpoint does): then only the look-up by tag prevents a duplicate.
for (const honourClientToken of [true, false]) t.test(`a leader killed between CreateFleet and its ledger entry (ClientToken ${honourClientToken ? 'honoured' : 'ignored'}): after failover exactly the decided instances exist`, { skip }, async (t) => {
  const { fake, leader } = await startAwsMesh(t, tempDir(t), { bundle: bundle!, fake: { honourClientToken } })
  const old = await leader()
  const hold = fake.holdAnswers('CreateFleet')
  const r = await meshd(['burst', '--count', '2', '--provider', 'aws-spot', '--json', '--config', old.configPath], { timeoutMs: 60_000 })
  t.equal(r.code, 0, r.code === 0 ? 'burst answered' : `${r.stdout}\n${r.stderr}`)
  t.match(JSON.parse(r.stdout), { decision: 'granted', granted: 2 })
  await waitFor(() => hold.held() === 2, { timeoutMs: 60_000, what: 'both CreateFleet calls carried out, their answers held' })
  t.equal(liveInstances(fake).length, 2, 'two instances exist; the leader has not heard of them')
  old.kill('SIGKILL')
  await waitFor(() => !old.running, { timeoutMs: 10_000, what: 'the old leader gone' })
  hold.release() // to a dead socket: the outcome is lost with the leader
  const next = await leader()
  t.not(next.peerId, old.peerId, 'another voter leads')

  const burst = await waitReadyBurst(next, 2, 180_000)
  t.equal(fake.instances().length, 2, `exactly two instances were ever launched (${fake.calls('CreateFleet')} CreateFleet calls)`)
  t.same(new Set(burst.map((m) => m.instance?.id)), new Set(fake.instances().map((i) => i.id)), 'and they are the members')
})

t.test('capacity: the next zone; on-demand when spot is gone everywhere; back on spot when it returns', { skip }, async (t) => {
  const { fake, nodes, leader } = await startAwsMesh(t, tempDir(t), {
    bundle: bundle!,
    refuse: [{ zone: 'us-east-1a', market: 'spot' }],
    provider: { unavailable_for: '4s' },
    config: {
      service: { dynamic_ondemand_fallback: true, upscale_delay_seconds: 0 },
      burst: { mode: 'auto', min_cloud_instances: 1, cost_budget: 1.0, check_interval: '1s', ttl: '30m' }
    }
  })
  const serving = async (): Promise<MemberStatus[]> => readyBurst(await nodes[0]!.status())
  // 1. min_cloud_instances 1: the cheapest zone (a, 0.03) refuses spot; the leader takes b (0.04).
  const { value: first } = await waitFor(async () => { const b = await serving(); return b.length === 1 ? b[0]! : null }, { timeoutMs: 120_000, what: 'one burst member ready' })
  const spotB = fake.instance(first.instance!.id)
  t.match({ zone: spotB.zone, market: spotB.market }, { zone: 'us-east-1b', market: 'spot' }, 'spot in us-east-1b: us-east-1a refused capacity')
  t.ok(fake.calls('CreateFleet') >= 2, `zone a was asked first (${fake.calls('CreateFleet')} CreateFleet calls)`)

  // 2. A reclaim wave: no spot anywhere, and the running one is interrupted.
  fake.refuse({ market: 'spot' })
  fake.interrupt(spotB.id, Date.now() + 8_000)
  const { value: od } = await waitFor(async () => {
    const b = (await serving()).filter((m) => m.id !== first.id)
    return b.length === 1 ? b[0]! : null
  }, { timeoutMs: 120_000, what: 'a replacement member ready' })
  const odInst = fake.instance(od.instance!.id)
  t.equal(odInst.market, 'on-demand', 'the replacement is on-demand (dynamic_ondemand_fallback)')
  const lead = await leader()
  const why = lead.logs.map((l) => String(l.msg ?? '')).filter((m) => /on-demand \(fallback: spot unavailable\)/.test(m))
  t.ok(why.length > 0, `the leader says why: ${why[0] ?? '(no line)'}`)

  // 3. Spot returns: a spot instance replaces the fallback, which is then terminated.
  fake.restore()
  await waitFor(() => fake.instance(odInst.id).state === 'terminated', { timeoutMs: 120_000, what: 'the on-demand fallback terminated' })
  const { value: back } = await waitFor(async () => { const b = await serving(); return b.length === 1 ? b[0]! : null }, { timeoutMs: 60_000, what: 'one burst member ready' })
  t.equal(fake.instance(back.instance!.id).market, 'spot', 'back on spot')
  t.same(fake.instances().filter((i) => i.state === 'running' || i.state === 'pending').map((i) => i.market), ['spot'], 'one instance runs, on spot')
})
