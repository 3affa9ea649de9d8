import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig, validateConfig, parseYaml, ConfigError } from '../../daemon/config/load.ts'
import { resolveEnvPath } from '../../daemon/config/env.ts'
import { parseDuration, formatDuration } from '../../daemon/config/duration.ts'
import { tempDir } from '../helpers/tmp.ts'

/** The example config that ships with meshd (the interface contract's), as users will copy it. */
function shippedExample (): string {
  return readFileSync(join(import.meta.dirname, '../../daemon/config/example.yaml'), 'utf8')
}

t.test('the shipped example config is valid and keeps its values', async (t) => {
  const c = validateConfig(parseYaml(shippedExample(), 'example.yaml'), 'example.yaml')
  t.equal(c.cluster, 'prod')
  t.equal(c.node_name, 'hel1-a')
  t.equal(c.mesh.heartbeat_ms, 1000)
  t.same(c.replica?.readiness_probe, { path: '/health', post_data: null, initial_delay_seconds: 120, timeout_seconds: 10, period_seconds: 5 })
  t.equal(c.burst.scale_down_delay, 5 * 60_000, 'durations become milliseconds')
  t.equal(c.burst.ttl, 8 * 3_600_000)
  t.equal(c.providers.length, 3)
  t.match(c.providers[0], { name: 'workstation', kind: 'local', max_instances: 4, cost_per_hour: 0.3 })
  t.match(c.providers[1], { kind: 'ssh', known_hosts: '/etc/meshd/known_hosts', hosts: [{ ip: '10.0.1.100' }, { ip: '10.0.1.101', port: 2222 }] })
  t.match(c.providers[2], { kind: 'aws', spot: true, spot_recovery: 'FAILOVER', regions: ['us-east-1', 'us-west-2'] })
})

t.test('defaults for a one-machine config', async (t) => {
  const c = validateConfig({ cluster: 'x' }, 'f.yaml')
  t.equal(c.voter, true)
  t.same(c.mesh.listen, ['/ip4/0.0.0.0/tcp/4001'])
  t.equal(c.http.listen, '127.0.0.1:8080')
  t.equal(c.http.max_body_bytes, 10 * 1024 * 1024)
  t.equal(c.admin.socket, '/run/meshd/admin.sock')
  t.equal(c.replica, undefined, 'no replica: the node only routes')
  t.equal(c.burst.mode, 'manual', 'spending money is opt-in')
})

const bad: Array<[string, unknown, RegExp]> = [
  ['missing cluster', {}, /^f\.yaml: cluster: expected string \(the key is required\)$/],
  ['wrong type', { cluster: 'x', mesh: { heartbeat_ms: 'fast' } }, /^f\.yaml: mesh\.heartbeat_ms: expected number, got string "fast"$/],
  ['unknown key', { cluster: 'x', mesh: { hartbeat_ms: 5 } }, /^f\.yaml: mesh\.hartbeat_ms: unknown key; expected one of listen, .*heartbeat_ms/],
  ['out of range', { cluster: 'x', mesh: { heartbeat_ms: 10 } }, /^f\.yaml: mesh\.heartbeat_ms: expected .*>=50/],
  ['bad duration', { cluster: 'x', burst: { ttl: 'forever' } }, /^f\.yaml: burst\.ttl: expected a duration like 30s, 5m, 8h or a number of seconds, got "forever"$/],
  ['bad enum', { cluster: 'x', burst: { mode: 'sometimes' } }, /^f\.yaml: burst\.mode: expected one of "manual"\|"auto"/],
  ['bad listen', { cluster: 'x', http: { listen: 'localhost' } }, /^f\.yaml: http\.listen: expected host:port/],
  ['bad multiaddr', { cluster: 'x', mesh: { bootstrap: ['10.0.0.1:4001'] } }, /^f\.yaml: mesh\.bootstrap\.0: expected a multiaddr/],
  ['bad cluster name', { cluster: 'no spaces' }, /^f\.yaml: cluster: expected a name of letters/],
  ['replica without command or url', { cluster: 'x', replica: { models: ['m'] } }, /^f\.yaml: replica: expected `command`/],
  ['duplicate provider', { cluster: 'x', providers: [{ name: 'a', kind: 'local', replica: { models: ['m'] } }, { name: 'a', kind: 'local', replica: { models: ['m'] } }] }, /^f\.yaml: providers\.1\.name: expected a unique provider name/],
  ['unknown provider kind', { cluster: 'x', providers: [{ name: 'a', kind: 'gcp' }] }, /^f\.yaml: providers\.0\.kind: unknown provider kind "gcp"; expected local \(meshd processes on the leader's own machine\), ssh \(a pool of hosts reached over SSH\) or aws \(EC2 instances\)$/],
  ['provider without kind', { cluster: 'x', providers: [{ name: 'a', replica: { models: ['m'] } }] }, /^f\.yaml: providers\.0\.kind: no kind given; expected local \(.*\), ssh \(.*\) or aws \(.*\)$/],
  ['key of another provider kind', { cluster: 'x', providers: [{ name: 'a', kind: 'local', hosts: [], replica: { models: ['m'] } }] }, /^f\.yaml: providers\.0\.hosts: unknown key for a provider of kind local; expected one of name, .*work_dir$/],
  ['aws without an AMI or template', { cluster: 'x', providers: [{ name: 'e', kind: 'aws', regions: ['us-east-1'], instance_types: ['c7a.large'], replica: { models: ['m'] } }] }, /^f\.yaml: providers\.0: expected image_id \(an AMI\) or launch_template/],
  ['aws AMI missing for a region', { cluster: 'x', providers: [{ name: 'e', kind: 'aws', regions: ['us-east-1', 'us-west-2'], instance_types: ['c7a.large'], image_id: { 'us-east-1': 'ami-1' }, replica: { models: ['m'] } }] }, /^f\.yaml: providers\.0\.image_id: expected an AMI for region us-west-2 \(AMI ids are regional; have us-east-1\)$/],
  ['aws launch template over two regions', { cluster: 'x', providers: [{ name: 'e', kind: 'aws', regions: ['us-east-1', 'us-west-2'], instance_types: ['c7a.large'], launch_template: { id: 'lt-1' }, replica: { models: ['m'] } }] }, /^f\.yaml: providers\.0\.launch_template: expected one region with launch_template \(a launch template belongs to one region\), got 2/],
  ['aws bundle_url without its sha256', { cluster: 'x', providers: [{ name: 'e', kind: 'aws', regions: ['us-east-1'], instance_types: ['c7a.large'], image_id: 'ami-1', bundle_url: 'https://example.invalid/b.tgz', replica: { models: ['m'] } }] }, /^f\.yaml: providers\.0\.bundle_sha256: expected bundle_url and bundle_sha256 together/],
  ['aws swarm key from ssm without a parameter', { cluster: 'x', providers: [{ name: 'e', kind: 'aws', regions: ['us-east-1'], instance_types: ['c7a.large'], image_id: 'ami-1', swarm_key: { from: 'ssm' }, replica: { models: ['m'] } }] }, /^f\.yaml: providers\.0\.swarm_key\.parameter: expected the SSM parameter name/],
  ['min over max', { cluster: 'x', burst: { min_cloud_instances: 5, max_cloud_instances: 2 } }, /burst\.min_cloud_instances: expected at most burst\.max_cloud_instances \(2\)/],
  // Values the patterns let through and node:net or libp2p then refused with their own words.
  ['http port out of range', { cluster: 'x', http: { listen: '127.0.0.1:99999' } }, /^f\.yaml: http\.listen: expected host:port such as 127\.0\.0\.1:8080; port 99999 is above 65535$/],
  ['http host not an IPv4 address', { cluster: 'x', http: { listen: '999.0.0.1:8080' } }, /^f\.yaml: http\.listen: expected host:port .*; "999\.0\.0\.1" is not an IPv4 address$/],
  ['mesh port out of range', { cluster: 'x', mesh: { listen: ['/ip4/127.0.0.1/tcp/99999'] } }, /^f\.yaml: mesh\.listen\.0: expected a multiaddr .*; port 99999 is above 65535$/],
  ['mesh address not an IPv4 address', { cluster: 'x', mesh: { listen: ['/ip4/999.1.1.1/tcp/4001'] } }, /^f\.yaml: mesh\.listen\.0: expected a multiaddr .*; "999\.1\.1\.1" is not an IPv4 address$/],
  ['bootstrap address not an IPv6 address', { cluster: 'x', mesh: { bootstrap: ['/ip6/12345::1/tcp/4001'] } }, /^f\.yaml: mesh\.bootstrap\.0: expected a multiaddr .*; "12345::1" is not an IPv6 address$/],
  ['election timeout min over max', { cluster: 'x', election: { election_timeout_min_ms: 3000, election_timeout_max_ms: 2000 } }, /^f\.yaml: election\.election_timeout_max_ms: expected more than election\.election_timeout_min_ms \(3000\)$/],
  ['election timeout min equal to max', { cluster: 'x', election: { election_timeout_min_ms: 2000, election_timeout_max_ms: 2000 } }, /^f\.yaml: election\.election_timeout_max_ms: expected more than/],
  ['heartbeat longer than the lease', { cluster: 'x', election: { heartbeat_ms: 5000 } }, /^f\.yaml: election\.heartbeat_ms: expected less than the leader's lease, 1307 ms \(derived from election\.election_timeout_min_ms 1500 and election\.max_drift_rate 0\.05\): lower election\.heartbeat_ms or raise election\.election_timeout_min_ms$/]
]
for (const [name, raw, pattern] of bad) {
  t.test(`bad config names file, key and expectation: ${name}`, async (t) => {
    const err = t.throws(() => validateConfig(raw, 'f.yaml')) as ConfigError
    t.type(err, ConfigError)
    t.equal(err.exitCode, 2)
    t.match(err.message, pattern)
  })
}

t.test('YAML syntax errors name the line', async (t) => {
  t.throws(() => parseYaml('cluster: x\nmesh:\n  listen: [a\n', 'g.yaml'), /^g\.yaml: line \d+, column \d+: expected valid YAML/)
  t.throws(() => parseYaml('- a\n- b\n', 'g.yaml'), /g\.yaml: \(top level\): expected a mapping/)
})

t.test('addresses and timings that are right pass', async (t) => {
  const c = validateConfig({
    cluster: 'x',
    http: { listen: '[::1]:0' },
    mesh: { listen: ['/ip4/0.0.0.0/tcp/65535', '/ip6/::/tcp/0'], bootstrap: ['/dns4/a.example/tcp/4001/p2p/12D3KooWAbc', '/ip4/10.0.0.1/udp/4001/quic-v1'] },
    election: { heartbeat_ms: 1000, election_timeout_min_ms: 3000, election_timeout_max_ms: 4500 }
  }, 'f.yaml')
  t.equal(c.http.listen, '[::1]:0')
  t.equal(c.election.heartbeat_ms, 1000)
})

t.test('a YAML alias bomb is a config error naming the file, not a stack', async (t) => {
  const levels = 'abcdefghi'.split('')
  const bomb = ['cluster: x', 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ...levels.slice(1).map((l, i) => `${l}: &${l} [${Array(9).fill(`*${levels[i]!}`).join(',')}]`)].join('\n') + '\n'
  const err = t.throws(() => parseYaml(bomb, 'bomb.yaml')) as ConfigError
  t.type(err, ConfigError, 'a ConfigError (exit 2), not the yaml package\'s ReferenceError')
  t.match(err.message, /^bomb\.yaml: \(document\): expected YAML whose aliases \(\*name\) expand to a bounded size; these expand past the limit of 100 \(an alias bomb\?\)$/)
  t.same(parseYaml('cluster: x\nbase: &b {heartbeat_ms: 500}\nmesh: *b\n', 'ok.yaml').mesh, { heartbeat_ms: 500 }, 'ordinary aliases still work')
  t.throws(() => parseYaml('cluster: x\n#' + 'x'.repeat(2 << 20) + '\n', 'big.yaml'), /^big\.yaml: \(file\): expected a config file of at most 1048576 bytes/)
})

t.test('a missing file says how to make one', async (t) => {
  t.throws(() => loadConfig('/nonexistent/meshd.yaml', {}), /\/nonexistent\/meshd\.yaml: \(file\): expected an existing file \(run `meshd init`/)
})

t.test('MESHD_* environment overrides', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'c.yaml')
  writeFileSync(file, 'cluster: x\nmesh:\n  heartbeat_ms: 500\n')
  const c = loadConfig(file, {
    MESHD_HTTP_LISTEN: '0.0.0.0:9090',
    MESHD_MESH_HEARTBEAT_MS: '250',
    MESHD_NODE_NAME: 'from-env',
    MESHD_BURST_COST_BUDGET: '1.5',
    MESHD_MESH_BOOTSTRAP: '[/ip4/10.0.0.1/tcp/4001]',
    MESHD_VOTER: 'false',
    MESHD_CONFIG: 'ignored: names the file, not a key',
    PATH: '/bin'
  })
  t.equal(c.http.listen, '0.0.0.0:9090')
  t.equal(c.mesh.heartbeat_ms, 250, 'env wins over the file')
  t.equal(c.node_name, 'from-env', 'node_name is one key, not node.name')
  t.equal(c.burst.cost_budget, 1.5)
  t.same(c.mesh.bootstrap, ['/ip4/10.0.0.1/tcp/4001'], 'flow lists are parsed')
  t.equal(c.voter, false)
  t.throws(() => loadConfig(file, { MESHD_HTTP_LISTN: 'x' }), /environment MESHD_HTTP_LISTN/, 'a misspelt override is an error, not silently ignored')
  t.throws(() => loadConfig(file, { MESHD_MESH_HEARTBEAT_MS: 'soon' }), /mesh\.heartbeat_ms: expected number, got string "soon"/)
})

t.test('a bad value from an environment variable names the variable, not the file', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'c.yaml')
  writeFileSync(file, 'cluster: x\nproviders:\n  - {name: ws, kind: local, replica: {models: [m]}}\nburst: {min_cloud_instances: 3}\n')
  const table: Array<[Record<string, string>, string]> = [
    [{ MESHD_HTTP_LISTEN: 'localhost' }, 'environment MESHD_HTTP_LISTEN: http.listen: expected host:port such as 127.0.0.1:8080'],
    [{ MESHD_MESH_HEARTBEAT_MS: 'soon' }, 'environment MESHD_MESH_HEARTBEAT_MS: mesh.heartbeat_ms: expected number, got string "soon"'],
    [{ MESHD_MESH_BOOTSTRAP: '[10.0.0.1:4001]' }, 'environment MESHD_MESH_BOOTSTRAP: mesh.bootstrap.0: expected a multiaddr such as /ip4/10.0.0.1/tcp/4001'],
    [{ MESHD_PROVIDERS_0_KIND: 'gcp' }, 'environment MESHD_PROVIDERS_0_KIND: providers.0.kind: unknown provider kind "gcp"; expected local (meshd processes on the leader\'s own machine), ssh (a pool of hosts reached over SSH) or aws (EC2 instances)'],
    // A variable that makes a new section owns every problem in it: the file has no providers[1].
    [{ MESHD_PROVIDERS_1_COST_PER_HOUR: '0.5' }, 'environment MESHD_PROVIDERS_1_COST_PER_HOUR: providers.1.kind: no kind given; expected local (meshd processes on the leader\'s own machine), ssh (a pool of hosts reached over SSH) or aws (EC2 instances)'],
    // A cross-key check that a variable took part in: the file, with the variable named.
    [{ MESHD_BURST_MAX_CLOUD_INSTANCES: '2' }, `${file} (with MESHD_BURST_MAX_CLOUD_INSTANCES from the environment): burst.min_cloud_instances: expected at most burst.max_cloud_instances (2)`]
  ]
  for (const [env, message] of table) {
    const err = t.throws(() => loadConfig(file, env), Object.keys(env).join(' ')) as ConfigError
    t.equal(err.message, message)
    t.equal(err.exitCode, 2)
  }
  writeFileSync(file, 'cluster: x\nhttp: {listen: localhost}\n')
  t.throws(() => loadConfig(file, { MESHD_MESH_HEARTBEAT_MS: '500' }), { message: `${file}: http.listen: expected host:port such as 127.0.0.1:8080` }, 'a problem in the file is still the file\'s')
})

t.test('env names resolve against the schema, longest key first', async (t) => {
  t.same(resolveEnvPath('HTTP_MAX_BODY_BYTES'), ['http', 'max_body_bytes'])
  t.same(resolveEnvPath('SERVICE_TARGET_QPS_PER_REPLICA'), ['service', 'target_qps_per_replica'])
  t.same(resolveEnvPath('PROVIDERS_0_COST_PER_HOUR'), ['providers', 0, 'cost_per_hour'])
  t.same(resolveEnvPath('REPLICA_SIM_TTFT_MS'), ['replica', 'sim', 'ttft_ms'])
  t.equal(resolveEnvPath('NOPE'), null)
})

t.test('durations', async (t) => {
  const table: Array<[string | number, number | null]> = [
    ['5m', 300_000], ['10s', 10_000], ['8h', 28_800_000], ['1h30m', 5_400_000], ['250ms', 250], ['2d', 172_800_000],
    ['0', 0], [0, 0], [90, 90_000], ['1.5s', 1500], ['', null], ['5 m', null], ['m5', null], ['5x', null], [-1, null]
  ]
  for (const [input, ms] of table) t.equal(parseDuration(input), ms, `${JSON.stringify(input)} → ${ms}`)
  t.equal(formatDuration(1500), '1s')
  t.equal(formatDuration(90_000), '1m30s')
  t.equal(formatDuration(5_400_000), '1h30m')
})
