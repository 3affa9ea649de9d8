/**
 * A mesh that bursts onto (fake) EC2, for the aws end-to-end tests and the
 * interruption benchmark: the fake EC2 endpoint with instances as network +
 * mount namespaces that run their user data (test/helpers/fake-ec2), a real
 * bundle from `meshd bundle` served at the provider's bundle_url, and three
 * voters on the fake's bridge address (so instances reach them) whose config
 * has one `kind: aws` provider pointed at the fake. The swarm key goes to
 * the instances through (fake) SSM.
 */
import { readFileSync } from 'node:fs'
import type { Bundle } from './test-bundle.ts'
import { AWS_TEST_ENV } from './aws-env.ts'
import { startJoined, writeSwarmKey, type DaemonProcess } from './daemon.ts'
import { startFakeEc2, type CapacityRule, type FakeEc2, type FakeEc2Options } from './fake-ec2/index.ts'
import type { Teardown } from './tmp.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { agreedLeader, statuses } from '../../daemon/localmesh/cluster.ts'
import type { MemberStatus } from '../../daemon/status.ts'
import { readyBurst } from './burst.ts'


export const SIM_REPLICA = { models: ['llama3'], slots: 2, command: 'sim', sim: { ttft_ms: 20, tokens_per_second: 100, max_tokens: 16 } }

export interface AwsMeshOptions {
  bundle: Bundle
  /** Merged over the aws provider entry. */
  provider?: Record<string, unknown>
  /** Merged over the voters' config (top-level keys replace). */
  config?: Record<string, unknown>
  fake?: FakeEc2Options
  /** Spot prices per zone of c7a.large. @default a 0.03, b 0.04 */
  spot?: Record<string, number>
  /** Capacity EC2 refuses from the start (before the voters run). */
  refuse?: CapacityRule[]
}

export interface AwsMesh {
  fake: FakeEc2
  nodes: DaemonProcess[]
  swarmKeyFile: string
  /** The leader's DaemonProcess. */
  leader: () => Promise<DaemonProcess>
}

export async function startAwsMesh (t: Teardown, root: string, o: AwsMeshOptions): Promise<AwsMesh> {
  const fake = await startFakeEc2(t, { machines: 'netns', terminateGraceMs: 20_000, zones: { 'us-east-1': ['us-east-1a', 'us-east-1b'] }, ...o.fake })
  for (const [zone, price] of Object.entries(o.spot ?? { 'us-east-1a': 0.03, 'us-east-1b': 0.04 })) fake.setSpotPrice('c7a.large', zone, price)
  fake.setOnDemandPrice('c7a.large', 0.1)
  for (const rule of o.refuse ?? []) fake.refuse(rule)
  const swarmKeyFile = writeSwarmKey(root)
  fake.putParameter('/meshd/test/swarm-key', readFileSync(swarmKeyFile, 'utf8'))
  const provider = {
    name: 'aws-spot',
    kind: 'aws',
    regions: ['us-east-1'],
    zones: { 'us-east-1': ['us-east-1a', 'us-east-1b'] },
    instance_types: ['c7a.large'],
    image_id: 'ami-0123456789abcdef0',
    endpoint: fake.url,
    bundle_url: fake.serveFile('meshd.tar.gz', o.bundle.path),
    bundle_sha256: o.bundle.sha256,
    swarm_key: { from: 'ssm', parameter: '/meshd/test/swarm-key' },
    on_demand_prices: { 'c7a.large': 0.1 },
    spot: true,
    max_instances: 4,
    replica: SIM_REPLICA,
    ...o.provider
  }
  const config = {
    replica: SIM_REPLICA,
    burst: { cost_budget: 1.0, check_interval: '1s', ttl: '30m' },
    providers: [provider],
    ...o.config
  }
  const nodes = await startJoined(t, root, ['v1', 'v2', 'v3'].map((name) => ({ name, swarmKeyFile, host: fake.hostIp, config, env: { ...AWS_TEST_ENV } })), 'chain')
  await waitFor(async () => agreedLeader(await statuses(nodes), 3)?.leader ?? null, { timeoutMs: 30_000, what: 'one leader' })
  const leader = async (): Promise<DaemonProcess> => {
    const { value } = await waitFor(async () => {
      const live = nodes.filter((n) => n.running)
      const id = agreedLeader(await statuses(live))?.leader ?? null
      return live.find((n) => n.peerId === id) ?? null
    }, { timeoutMs: 30_000, what: 'the leader' })
    return value
  }
  return { fake, nodes, swarmKeyFile, leader }
}

/** The fake's instances that are not terminated (nor shutting down). */
export function liveInstances (fake: FakeEc2): ReturnType<FakeEc2['instances']> {
  return fake.instances().filter((i) => i.state === 'pending' || i.state === 'running')
}

/**
 * The voters' config for an interruption run: slow streams (48 tokens at 20
 * tokens/s: 2.4 s each, so a reclaim catches some mid-stream) on one slot
 * per replica, and an autoscaler that keeps `burst` burst nodes and never
 * scales for load (a new node must be a replacement, not a scale-up).
 */
export function interruptionConfig (burst: number): Record<string, unknown> {
  return {
    replica: { models: ['llama3'], slots: 1, command: 'sim', sim: { ttft_ms: 20, tokens_per_second: 20, max_tokens: 48 } },
    service: { upscale_delay_seconds: 0, target_qps_per_replica: 1000 },
    burst: { mode: 'auto', min_cloud_instances: burst, max_cloud_instances: burst + 2, queue_depth_threshold: 10_000, cost_budget: 1.0, check_interval: '1s', ttl: '30m' }
  }
}

export interface InterruptionRun {
  /** Notice (or, without one, the reclaim) → a new burst member ready, ms; null when none came within the wait. */
  replacementReadyMs: number | null
  /** Notice → the interrupted instance terminated (by the leader once drained, or by EC2 at its time), ms. */
  goneMs: number
  victimZone: string
  replacement: { zone: string, market: string } | null
  ok: number
  failures: string[]
  servedBy: Map<string, number>
}

/**
 * On a mesh with two ready burst members: streaming chat completions through
 * every voter's front door (the official openai client), one member's
 * instance interrupted `noticeMs` ahead — with the notice on its IMDS, or with
 * none (it just dies at that time, as a system that reads no notices sees
 * it) — and the load kept up until a replacement is ready and 20 more
 * requests went through after the instance was gone.
 */
export async function interruptUnderLoad (mesh: Pick<AwsMesh, 'fake' | 'nodes'>, o: { noticeMs: number, notice: boolean, streams?: number }): Promise<InterruptionRun> {
  const { fake, nodes } = mesh
  const OpenAI = (await import('openai')).default
  const ready = async (): Promise<MemberStatus[]> => readyBurst(await nodes[0]!.status())
  const members = await ready()
  if (members.length < 2) throw new Error(`expected two ready burst members, have ${members.length}`)
  let stop = false
  let ok = 0
  const failures: string[] = []
  const servedBy = new Map<string, number>()
  const clients = nodes.map((n) => new OpenAI({ baseURL: `${n.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60_000 }))
  const load = Promise.all(Array.from({ length: o.streams ?? 9 }, async (_, i) => {
    const client = clients[i % clients.length]!
    while (!stop) {
      try {
        const { data: stream, response } = await client.chat.completions.create({ model: 'llama3', stream: true, max_tokens: 48, messages: [{ role: 'user', content: 'hello' }] }).withResponse()
        let text = ''
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
        if (text.length === 0) throw new Error('empty completion')
        const by = response.headers.get('x-meshd-served-by') ?? '?'
        servedBy.set(by, (servedBy.get(by) ?? 0) + 1)
        ok++
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  }))
  try {
    const victim = fake.instance(members[0]!.instance!.id)
    const victimMember = members[0]!
    await waitFor(() => (servedBy.get(victimMember.id) ?? 0) > 0, { timeoutMs: 30_000, what: 'the victim to take traffic' })
    const t0 = Date.now()
    fake.interrupt(victim.id, t0 + o.noticeMs, { notice: o.notice })
    let replacementReadyMs: number | null = null
    let replacement: InterruptionRun['replacement'] = null
    let goneMs: number | null = null
    await waitFor(async () => {
      if (goneMs === null && fake.instance(victim.id).state === 'terminated') goneMs = Date.now() - t0
      if (replacementReadyMs === null) {
        const fresh = (await ready()).find((m) => !members.some((x) => x.id === m.id))
        if (fresh !== undefined) {
          replacementReadyMs = Date.now() - t0
          const r = fake.instance(fresh.instance!.id)
          replacement = { zone: r.zone, market: r.market }
        }
      }
      return goneMs !== null && replacementReadyMs !== null
    }, { timeoutMs: o.noticeMs + 120_000, intervalMs: 100, what: 'the interrupted instance gone and a replacement ready' })
    const atGone = ok
    await waitFor(() => ok >= atGone + 20, { timeoutMs: 30_000, what: 'requests served after the instance went' })
    stop = true
    await load
    return { replacementReadyMs, goneMs: goneMs!, victimZone: victim.zone, replacement, ok, failures, servedBy }
  } finally {
    stop = true
    await load
  }
}
