/**
 * The meshd config file, with the defaults a single machine needs; every key
 * is described in docs/configuration.md, which test/config/reference.test.ts
 * keeps equal to this schema (a new key needs a row there). Every key is
 * validated at start: a wrong key, type or value stops the daemon with exit 2
 * and a message naming the file, the key and what was expected (see load.ts
 * for the wording).
 *
 * Durations are given as `5m`, `10s`, `8h` (a bare number is seconds) and come
 * out of the schema in milliseconds, so code never guesses units.
 */
import { z } from 'zod'
import { hostname } from 'node:os'
import { parseDuration } from './duration.ts'
import { hostPortProblem, multiaddrProblem } from './address.ts'
import { leaseMs } from '../../mesh/election/raft/timing.ts'

/** A duration in the config file, parsed to milliseconds. */
const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v)
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `expected a duration like 30s, 5m, 8h or a number of seconds, got ${JSON.stringify(v)}` })
    return z.NEVER
  }
  return ms
})

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected a name of letters, digits, ".", "_" or "-" (at most 63 characters)')
/** A string the pattern accepts and `problem` finds nothing wrong with (the problem goes into the message). */
function checked (pattern: RegExp, expected: string, problem: (v: string) => string | null): z.ZodString {
  return z.string().regex(pattern, expected).superRefine((v, ctx) => {
    const p = pattern.test(v) ? problem(v) : null
    if (p !== null) ctx.addIssue({ code: 'custom', message: `${expected}; ${p}` })
  })
}
const multiaddr = checked(/^\/(ip4|ip6|dns|dns4|dns6)\//, 'expected a multiaddr such as /ip4/10.0.0.1/tcp/4001', multiaddrProblem)
const hostPort = checked(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port such as 127.0.0.1:8080', hostPortProblem)
const positiveInt = z.number().int().positive()
const money = z.number().nonnegative()

/** SkyServe's readiness_probe: a path, or an object with the same field names. */
const readinessProbe = z.union([
  z.string().transform((path) => ({ path })),
  z.strictObject({
    path: z.string().optional(),
    post_data: z.unknown().optional(),
    initial_delay_seconds: z.number().nonnegative().optional(),
    timeout_seconds: z.number().positive().optional(),
    period_seconds: z.number().positive().optional()
  })
]).transform((p) => ({
  path: p.path ?? '/health',
  post_data: 'post_data' in p ? (p.post_data ?? null) : null,
  initial_delay_seconds: 'initial_delay_seconds' in p ? (p.initial_delay_seconds ?? 120) : 120,
  timeout_seconds: 'timeout_seconds' in p ? (p.timeout_seconds ?? 10) : 10,
  period_seconds: 'period_seconds' in p ? (p.period_seconds ?? 5) : 5
}))

const simSettings = z.strictObject({
  ttft_ms: z.number().nonnegative().default(50),
  tokens_per_second: z.number().positive().default(40),
  max_tokens: positiveInt.default(64)
}).prefault({})

/** The local inference server; absent: the node only routes. */
export const replicaSchema = z.strictObject({
  models: z.array(z.string().min(1)).min(1, 'expected at least one model name'),
  slots: positiveInt.default(4),
  command: z.string().min(1).optional(),
  url: z.url({ protocol: /^https?$/ }).optional(),
  readiness_probe: readinessProbe.prefault('/health'),
  sim: simSettings
}).refine((r) => r.command !== undefined || r.url !== undefined, {
  message: 'expected `command` (a server meshd starts, or "sim") or `url` (a server managed elsewhere)'
}).refine((r) => r.command === undefined || r.command === 'sim' || r.url !== undefined, {
  path: ['url'],
  message: 'expected the URL the command\'s server listens on (e.g. http://127.0.0.1:9000): meshd cannot guess where it listens'
})

const providerCommon = {
  name,
  max_instances: positiveInt.default(20),
  cost_per_hour: money.default(0),
  replica: z.strictObject({
    models: z.array(z.string().min(1)).min(1),
    slots: positiveInt.default(4),
    command: z.string().min(1).default('sim'),
    url: z.url().optional(),
    sim: simSettings
  }),
  /** Merged into each launched node's meshd config (ports, region, labels ...). */
  config: z.record(z.string(), z.unknown()).default({})
}

const sshHost = z.strictObject({
  ip: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().optional(),
  identity_file: z.string().optional(),
  install_dir: z.string().min(1).optional(),
  config: z.record(z.string(), z.unknown()).default({})
})

/**
 * Every provider kind in plain words, for errors and docs. Typed by the union
 * below, so a new kind cannot be added without saying what it is.
 */
export const PROVIDER_KINDS: Record<z.input<typeof providerSchema>['kind'], string> = {
  local: "meshd processes on the leader's own machine",
  ssh: 'a pool of hosts reached over SSH',
  aws: 'EC2 instances'
}

export const providerSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    ...providerCommon,
    kind: z.literal('local'),
    region: z.string().default('local'),
    /**
     * Where launched nodes keep their state, config and logs. Every daemon on
     * this machine must use the same directory, so a new leader on the same
     * machine finds (lists, adopts, terminates) what an old one launched.
     * Default: <state_dir>/providers/<provider name> (one daemon per machine).
     */
    work_dir: z.string().min(1).optional()
  }),
  z.strictObject({
    ...providerCommon,
    kind: z.literal('ssh'),
    user: z.string().default('root'),
    identity_file: z.string().optional(),
    known_hosts: z.string().default('/etc/meshd/known_hosts'),
    install_dir: z.string().default('/opt/meshd'),
    /** The bundle (tar.gz from `meshd bundle`) installed on the hosts; absent: the leader makes one on first need (daemon/bundle/cache.ts). */
    bundle: z.string().min(1).optional(),
    region: z.string().default('ssh'),
    hosts: z.array(sshHost).min(1)
  }),
  z.strictObject({
    ...providerCommon,
    kind: z.literal('aws'),
    regions: z.array(z.string().min(1)).min(1),
    instance_types: z.array(z.string().min(1)).min(1),
    /** The AMI: one id for every region, or one per region (AMI ids are regional). */
    image_id: z.union([z.string().min(1), z.record(z.string(), z.string().min(1))]).optional(),
    launch_template: z.strictObject({ id: z.string(), version: z.string().default('$Latest') }).optional(),
    subnet_ids: z.record(z.string(), z.string()).default({}),
    security_group_ids: z.array(z.string()).default([]),
    spot: z.boolean().default(true),
    spot_recovery: z.enum(['FAILOVER', 'EAGER_NEXT_REGION']).default('FAILOVER'),
    endpoint: z.url().nullable().default(null),
    /** Zones to launch in, per region; a region not listed: every zone EC2 says is available there. */
    zones: z.record(z.string(), z.array(z.string().min(1)).min(1)).default({}),
    /** Where a new instance fetches the meshd bundle (https, or http on a private network): a public or presigned S3 object URL. */
    bundle_url: z.url({ protocol: /^https?$/ }).optional(),
    /** The bundle's sha256; the instance refuses a download that differs. */
    bundle_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the 64 hex digits `meshd bundle` prints').optional(),
    install_dir: z.string().min(1).default('/opt/meshd'),
    /**
     * How an instance gets the swarm key: in its user data (readable by anyone
     * who may DescribeInstanceAttribute on it; README says the risk), or from
     * SSM Parameter Store / Secrets Manager with the instance's role.
     */
    swarm_key: z.strictObject({
      from: z.enum(['user_data', 'ssm', 'secrets_manager']).default('user_data'),
      /** The SSM parameter (a SecureString) holding the key, with `from: ssm`. */
      parameter: z.string().min(1).optional(),
      /** The Secrets Manager secret holding the key, with `from: secrets_manager`. */
      secret_id: z.string().min(1).optional()
    }).superRefine((k, ctx) => {
      if (k.from === 'ssm' && k.parameter === undefined) ctx.addIssue({ code: 'custom', path: ['parameter'], message: 'expected the SSM parameter name with `from: ssm`' })
      if (k.from === 'secrets_manager' && k.secret_id === undefined) ctx.addIssue({ code: 'custom', path: ['secret_id'], message: 'expected the secret id with `from: secrets_manager`' })
    }).prefault({}),
    /** The instance profile (name or ARN) launched instances get: it needs only what swarm_key's source requires. */
    iam_instance_profile: z.string().min(1).optional(),
    key_name: z.string().min(1).optional(),
    /** On-demand $/h per instance type, over the table shipped with meshd (providers/aws/on-demand-prices.ts). */
    on_demand_prices: z.record(z.string(), money).default({}),
    /** How often spot prices are read again (DescribeSpotPriceHistory). */
    price_refresh: duration.prefault('5m'),
    /** An offering EC2 refused for capacity is not tried again for this long (Karpenter: 3 min). */
    unavailable_for: duration.prefault('3m')
  }).superRefine((p, ctx) => {
    // Both may be given: the template's settings with image_id's AMI (CreateFleet overrides it).
    if (typeof p.image_id === 'object') {
      for (const r of p.regions) if (p.image_id[r] === undefined) ctx.addIssue({ code: 'custom', path: ['image_id'], message: `expected an AMI for region ${r} (AMI ids are regional; have ${Object.keys(p.image_id).join(', ') || 'none'})` })
    }
    if (p.launch_template !== undefined && p.regions.length > 1) ctx.addIssue({ code: 'custom', path: ['launch_template'], message: `expected one region with launch_template (a launch template belongs to one region), got ${p.regions.length}: give one aws provider per region, or use image_id` })
    if (p.image_id === undefined && p.launch_template === undefined) ctx.addIssue({ code: 'custom', path: [], message: 'expected image_id (an AMI) or launch_template (or both: the template with image_id\'s AMI)' })
    if ((p.bundle_url === undefined) !== (p.bundle_sha256 === undefined)) ctx.addIssue({ code: 'custom', path: [p.bundle_url === undefined ? 'bundle_url' : 'bundle_sha256'], message: 'expected bundle_url and bundle_sha256 together (`meshd bundle` prints the sha256)' })
  })
])

export const configSchema = z.strictObject({
  cluster: name,
  node_name: z.string().min(1).default(() => hostname()),
  state_dir: z.string().min(1).default('/var/lib/meshd'),
  swarm_key_file: z.string().min(1).default('/etc/meshd/swarm.key'),
  voter: z.boolean().default(true),
  /** Where this node's capacity comes from, shown in status: static (always-on), ssh, local, aws, k8s. */
  provider: z.string().min(1).default('static'),
  region: z.string().min(1).default('local'),
  zone: z.string().min(1).optional(),
  spot: z.boolean().default(false),
  /** What this node costs per hour; the budget counts burst nodes only. */
  cost_per_hour: money.default(0),
  /** Set by the provider that launched this node: it is burst capacity. */
  instance: z.strictObject({
    provider: z.string(),
    id: z.string(),
    key: z.string().optional(),
    launched_at: z.number().int().nonnegative(),
    /**
     * Where this node learns it is about to be taken away: `ec2` polls the
     * instance metadata (IMDSv2) for spot interruption notices and rebalance
     * recommendations. Set by the aws provider's boot.
     */
    notices: z.enum(['none', 'ec2']).default('none'),
    /** With `notices: ec2`: how often the instance metadata is read (AWS suggests every 5 s; tests compress it). */
    notice_poll: duration.pipe(z.number().min(100, 'expected at least 100ms: every poll is two metadata reads')).prefault('5s')
  }).optional(),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
  }).prefault({}),
  mesh: z.strictObject({
    listen: z.array(multiaddr).default(['/ip4/0.0.0.0/tcp/4001']),
    announce: z.array(multiaddr).default([]),
    bootstrap: z.array(multiaddr).default([]),
    heartbeat_ms: z.number().int().min(50).max(60_000).default(1000),
    /** No heartbeat for this long: suspect. Default 3.5 heartbeats (see mesh/membership/constants.ts). */
    suspect_after_ms: z.number().int().positive().optional(),
    /** No heartbeat for this long: dead. Default 10 heartbeats. */
    dead_after_ms: z.number().int().positive().optional(),
    /** A dead member is forgotten after this long (spawn's registry: 1 h). */
    forget_after: duration.prefault('1h'),
    /** Gossip messages larger than this are rejected by the topic validator. */
    max_message_bytes: z.number().int().min(1024).max(1 << 20).default(64 * 1024)
  }).prefault({}),
  http: z.strictObject({
    listen: hostPort.default('127.0.0.1:8080'),
    api_keys: z.array(z.string().min(1)).default([]),
    max_body_bytes: positiveInt.default(10 * 1024 * 1024),
    /** The most `max_tokens` / `max_completion_tokens` a request may ask; above it 400. Checked by the entry node. */
    max_tokens: positiveInt.default(32768),
    /** Per-model caps over http.max_tokens (e.g. a model's context length). */
    max_tokens_by_model: z.record(z.string().min(1), positiveInt).default({}),
    /** Open client connections at most; beyond, new ones are answered 503 and closed, and /health says so. */
    max_connections: positiveInt.default(4096),
    /** A request body that has not fully arrived after this long gets 408. */
    body_timeout: duration.prefault('30s'),
    /** How long a request may wait at the entry node when every candidate is saturated. */
    queue_timeout: duration.prefault('30s'),
    /** Requests waiting at the entry node at most; beyond it 429. */
    max_queue: z.number().int().nonnegative().default(256),
    /** Deadline of a proxied request, carried to the member that serves it. */
    request_timeout: duration.prefault('10m'),
    /** On SIGTERM or leave: how long requests in flight may take to finish before the replica is stopped anyway. */
    drain_timeout: duration.prefault('120s')
  }).prefault({}),
  routing: z.strictObject({
    policy: z.enum(['least_load']).default('least_load')
  }).prefault({}),
  admin: z.strictObject({
    socket: z.string().min(1).default('/run/meshd/admin.sock'),
    /** A connection that has sent no complete request within this long is closed. */
    idle_timeout: duration.prefault('10s')
  }).prefault({}),
  replica: replicaSchema.optional(),
  service: z.strictObject({
    min_replicas: z.number().int().nonnegative().default(1),
    max_replicas: positiveInt.default(20),
    target_qps_per_replica: z.number().positive().default(5),
    upscale_delay_seconds: z.number().nonnegative().default(300),
    downscale_delay_seconds: z.number().nonnegative().default(1200),
    base_ondemand_fallback_replicas: z.number().int().nonnegative().default(0),
    dynamic_ondemand_fallback: z.boolean().default(false)
  }).prefault({}),
  burst: z.strictObject({
    mode: z.enum(['manual', 'auto']).default('manual'),
    queue_depth_threshold: z.number().int().nonnegative().default(100),
    min_cloud_instances: z.number().int().nonnegative().default(0),
    max_cloud_instances: z.number().int().nonnegative().default(20),
    cost_budget: money.default(10),
    scale_down_delay: duration.prefault('5m'),
    check_interval: duration.prefault('10s'),
    ttl: duration.prefault('8h'),
    idle_timeout: duration.prefault('30m'),
    /** A burst node that has heard from no voter for this long retires itself: no spend orphaned by a partition. */
    lost_mesh_grace: duration.prefault('2m')
  }).prefault({}),
  /** Leader election (Raft). Every voter must use the same timeouts. */
  election: z.strictObject({
    /** The leader's heartbeat to the voters, which renews its lease. */
    heartbeat_ms: z.number().int().min(10).default(500),
    /** Randomised election timeout; the leader's lease is derived from the minimum. */
    election_timeout_min_ms: z.number().int().min(50).default(1500),
    election_timeout_max_ms: z.number().int().min(60).default(2250),
    /** The most any clock may run fast or slow (ρ); the lease is shortened by it. */
    max_drift_rate: z.number().min(0).max(0.5).default(0.05),
    /** A voter dead this long is dropped from the voter set (sooner: `meshd voters remove`). */
    voter_expiry: duration.prefault('24h')
  }).prefault({}),
  providers: z.array(providerSchema).default([])
}).superRefine((c, ctx) => {
  const seen = new Set<string>()
  c.providers.forEach((p, i) => {
    if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: ['providers', i, 'name'], message: `expected a unique provider name, "${p.name}" is used twice` })
    seen.add(p.name)
  })
  if (c.burst.min_cloud_instances > c.burst.max_cloud_instances) {
    ctx.addIssue({ code: 'custom', path: ['burst', 'min_cloud_instances'], message: `expected at most burst.max_cloud_instances (${c.burst.max_cloud_instances})` })
  }
  if (c.service.min_replicas > c.service.max_replicas) {
    ctx.addIssue({ code: 'custom', path: ['service', 'min_replicas'], message: `expected at most service.max_replicas (${c.service.max_replicas})` })
  }
  if (c.mesh.listen.length === 0) ctx.addIssue({ code: 'custom', path: ['mesh', 'listen'], message: 'expected at least one listen address' })
  electionTiming(c.election, ctx)
})

/**
 * The election's timing must let the design hold (mesh/election/raft/timing.ts,
 * validateTiming): checked here so that a bad value is a config error naming
 * the key, not a TimingError from deep inside the start.
 */
function electionTiming (e: { heartbeat_ms: number, election_timeout_min_ms: number, election_timeout_max_ms: number, max_drift_rate: number }, ctx: z.RefinementCtx): void {
  if (e.election_timeout_max_ms <= e.election_timeout_min_ms) {
    ctx.addIssue({ code: 'custom', path: ['election', 'election_timeout_max_ms'], message: `expected more than election.election_timeout_min_ms (${e.election_timeout_min_ms})` })
    return
  }
  const lease = leaseMs({ heartbeatMs: e.heartbeat_ms, electionTimeoutMinMs: e.election_timeout_min_ms, electionTimeoutMaxMs: e.election_timeout_max_ms, maxDriftRate: e.max_drift_rate })
  if (lease <= e.heartbeat_ms) {
    ctx.addIssue({
      code: 'custom',
      path: ['election', 'heartbeat_ms'],
      message: `expected less than the leader's lease, ${Math.max(0, lease)} ms (derived from election.election_timeout_min_ms ${e.election_timeout_min_ms} and election.max_drift_rate ${e.max_drift_rate}): lower election.heartbeat_ms or raise election.election_timeout_min_ms`
    })
  }
}

export type Config = z.output<typeof configSchema>
export type ReplicaConfig = NonNullable<Config['replica']>
export type ProviderConfig = Config['providers'][number]
