/**
 * providers/aws/boot.ts without namespaces: the config boot writes (pure),
 * and each step's failure named — no spec, no IMDS, no meshd:key tag, a
 * swarm key that SSM / Secrets Manager do not have or that is malformed, a
 * config the validator refuses — against a fake IMDS and the fake's SSM and
 * Secrets Manager on loopback. The real boot is test/providers/boot-ec2.test.ts.
 */
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MetadataService } from '@aws-sdk/ec2-metadata-service'
import { bootConfig, bootEc2, BootError, fetchSwarmKey, type InstanceFacts } from '../../providers/aws/boot.ts'
import { BOOT_SPEC_VERSION, type BootSpec } from '../../providers/aws/boot-spec.ts'
import { validateConfig } from '../../daemon/config/load.ts'
import { nodeName } from '../../daemon/leader/plan/launch-request.ts'
import { generateSwarmKey } from '../../mesh/swarm-key.ts'
import { startImds, type ImdsInstance } from '../helpers/imds.ts'
import { startFakeEc2 } from '../helpers/fake-ec2/index.ts'
import { tempDir } from '../helpers/tmp.ts'

process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST'
process.env.AWS_SECRET_ACCESS_KEY = 'test-secret'

const KEY = generateSwarmKey()

function spec (dir: string, over: Partial<BootSpec> = {}): BootSpec {
  return {
    v: BOOT_SPEC_VERSION,
    provider: 'aws-spot',
    cluster: 'c1',
    config: { replica: { models: ['m'], slots: 2, command: 'sim' }, mesh: { bootstrap: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'] } },
    swarm_key: { from: 'user_data', key: KEY },
    paths: { config: join(dir, 'etc', 'meshd.json'), swarm_key: join(dir, 'etc', 'swarm.key'), state_dir: join(dir, 'state') },
    install_dir: join(dir, 'opt'),
    ...over
  }
}

const FACTS: InstanceFacts = { instanceId: 'i-0abc', instanceType: 'c7a.large', region: 'us-east-1', zone: 'us-east-1c', spot: true, privateIp: '10.1.2.3', key: 'd4-1', price: 0.0312, launchedAt: Date.parse('2026-11-26T20:00:00Z') }

t.test('the config: the spec\'s, then what this instance is, which the spec cannot override', async (t) => {
  const dir = '/x'
  const s = spec(dir, { config: { ...spec(dir).config, node_name: 'mine', spot: false, http: { listen: '0.0.0.0:9090', drain_timeout: '30s' }, mesh: { listen: ['/ip4/0.0.0.0/tcp/0'], bootstrap: [] } } })
  const c = bootConfig(s, FACTS, nodeName)
  t.match(c, {
    cluster: 'c1',
    node_name: 'burst-d4-1',
    voter: false,
    provider: 'aws-spot',
    region: 'us-east-1',
    zone: 'us-east-1c',
    spot: true,
    cost_per_hour: 0.0312,
    state_dir: '/x/state',
    swarm_key_file: '/x/etc/swarm.key',
    instance: { provider: 'aws-spot', id: 'i-0abc', key: 'd4-1', launched_at: FACTS.launchedAt, notices: 'ec2' },
    http: { listen: '10.1.2.3:9090', drain_timeout: '30s' },
    admin: { socket: '/x/state/admin.sock' },
    replica: { models: ['m'] }
  })
  t.same(c.mesh, { listen: ['/ip4/10.1.2.3/tcp/4001'], announce: ['/ip4/10.1.2.3/tcp/4001'], bootstrap: [] }, 'port 0 in the spec: meshd\'s default port, on the private address')
  t.doesNotThrow(() => validateConfig(c, 'boot'), 'and meshd accepts it')
})

async function withImds (t: Test, inst: Partial<ImdsInstance> = {}): Promise<MetadataService> {
  const imds = await startImds({ instanceId: 'i-0abc', instanceType: 'c7a.large', region: 'us-east-1', zone: 'us-east-1c', localIpv4: '10.1.2.3', lifeCycle: 'spot', tags: { 'meshd:key': 'd4-1', 'meshd:price': '0.0312' }, ...inst })
  t.teardown(() => imds.close())
  return new MetadataService({ endpoint: imds.url, retries: 0 })
}

async function bootError (t: Test, p: Promise<unknown>, step: string, pattern: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e)
  t.type(err, BootError)
  t.equal((err as BootError).step, step)
  t.match((err as Error).message, pattern)
}

t.test('each failing step is named, with what failed; the swarm key is never in a message or a log line', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'boot.json')
  const logs: string[] = []
  const base = { specFile: file, validateConfig, nodeName, systemd: false, log: (l: string) => { logs.push(l) } }

  await bootError(t, bootEc2({ ...base, metadata: await withImds(t) }), 'spec', /cannot read .*boot\.json \(ENOENT\)/)
  writeFileSync(file, JSON.stringify({ ...spec(dir), v: 9 }))
  await bootError(t, bootEc2({ ...base, metadata: await withImds(t) }), 'spec', /boot\.json: v: /)

  writeFileSync(file, JSON.stringify(spec(dir)))
  await bootError(t, bootEc2({ ...base, metadata: new MetadataService({ endpoint: 'http://127.0.0.1:9', retries: 0 }), env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9' } }), 'metadata', /cannot read the instance id .* at http:\/\/127\.0\.0\.1:9/)
  await bootError(t, bootEc2({ ...base, metadata: await withImds(t, { tags: { 'meshd:price': '0.1' } }) }), 'metadata', /no tag meshd:key .*InstanceMetadataTags/)
  await bootError(t, bootEc2({ ...base, metadata: await withImds(t, { tags: undefined }) }), 'metadata', /no tag meshd:key/)
  await bootError(t, bootEc2({ ...base, metadata: await withImds(t, { tags: { 'meshd:key': 'd4-1', 'meshd:price': 'cheap' } }) }), 'metadata', /meshd:price is "cheap"/)

  writeFileSync(file, JSON.stringify(spec(dir, { config: { replica: { models: ['m'], slots: 0 } } })))
  await bootError(t, bootEc2({ ...base, metadata: await withImds(t) }), 'config', /meshd\.json.*replica\.slots/)

  writeFileSync(file, JSON.stringify(spec(dir)))
  await bootError(t, bootEc2({ ...base, metadata: await withImds(t) }), 'start', /opt\/current\/bin\/meshd does not exist/)
  t.ok(logs.some((l) => l.includes('boot-ec2: instance i-0abc (c7a.large, spot) in us-east-1c, key d4-1, 10.1.2.3')), 'progress is logged')
  t.notOk(logs.join('\n').includes(KEY.split('\n')[2]!), 'the swarm key is in no log line')
})

t.test('the swarm key from SSM or Secrets Manager (AWS_ENDPOINT_URL_* honoured); missing or malformed named', async (t) => {
  const fake = await startFakeEc2(t)
  process.env.AWS_ENDPOINT_URL_SSM = fake.url
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = fake.url
  t.teardown(() => { delete process.env.AWS_ENDPOINT_URL_SSM; delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER })
  fake.putParameter('/meshd/key', KEY)
  fake.putSecret('meshd-key', KEY.trimEnd())
  fake.putParameter('/meshd/bad', 'not a key')
  t.equal(await fetchSwarmKey({ from: 'ssm', parameter: '/meshd/key', region: 'us-east-1' }), KEY)
  t.equal(await fetchSwarmKey({ from: 'secrets_manager', secret_id: 'meshd-key', region: 'us-east-1' }), KEY, 'a trailing newline added')
  await bootError(t, fetchSwarmKey({ from: 'ssm', parameter: '/meshd/nope', region: 'us-east-1' }), 'swarm key', /SSM parameter \/meshd\/nope in us-east-1: ParameterNotFound/)
  await bootError(t, fetchSwarmKey({ from: 'secrets_manager', secret_id: 'nope', region: 'us-east-1' }), 'swarm key', /Secrets Manager secret nope in us-east-1: ResourceNotFoundException/)
  await bootError(t, fetchSwarmKey({ from: 'ssm', parameter: '/meshd/bad', region: 'us-east-1' }), 'swarm key', /SSM parameter \/meshd\/bad.*expected the first line/)
  t.notOk((await fetchSwarmKey({ from: 'user_data', key: KEY }).catch((e: Error) => e.message)).includes('not'), 'the user data key as given')
})
