/**
 * A mesh that bursts onto (fake) EC2, for the aws end-to-end tests and the
 * interruption benchmark: the fake EC2 endpoint with instances as network +
 * mount namespaces that run their user data (test/helpers/fake-ec2), a real
 * bundle from `meshd bundle` served at the provider's bundle_url, and three
 * voters on the fake's bridge address (so instances reach them) whose config
 * has one `kind: aws` provider pointed at the fake. The swarm key goes to
 * the instances through (fake) SSM.
 */
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { meshd } from './cli.ts'
import { startJoined, writeSwarmKey, type DaemonProcess } from './daemon.ts'
import { startFakeEc2, type FakeEc2, type FakeEc2Options } from './fake-ec2/index.ts'
import type { Teardown } from './tmp.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { agreedLeader, statuses } from '../../daemon/localmesh/cluster.ts'

/** Dummy credentials and no metadata look-up: the SDK never reaches out of this machine. */
export const AWS_TEST_ENV = {
  AWS_ACCESS_KEY_ID: 'AKIDTEST',
  AWS_SECRET_ACCESS_KEY: 'test-secret',
  AWS_EC2_METADATA_DISABLED: 'true'
} as const

export interface Bundle { path: string, sha256: string }

/** Builds the bundle once (about half a minute on 2 cores). */
export async function buildBundle (dir: string): Promise<Bundle> {
  const path = join(dir, 'meshd.tar.gz')
  const r = await meshd(['bundle', '--out', path, '--json', '--cache-dir', join(dir, 'bundle-cache')], { timeoutMs: 300_000 })
  if (r.code !== 0) throw new Error(`meshd bundle failed (${r.code}): ${r.stderr}`)
  return { path, sha256: (JSON.parse(r.stdout) as { sha256: string }).sha256 }
}

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
