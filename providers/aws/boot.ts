/**
 * `meshd boot-ec2`: what an EC2 burst node runs once its user data has
 * installed the bundle and written the boot spec (boot-spec.ts). It learns
 * which instance it is from the instance metadata (IMDSv2), fetches the
 * swarm key from where the spec says, writes the node's config and swarm
 * key (0600, temp + rename), and starts `meshd start` for good: under a
 * systemd unit (`meshd-burst.service`, Restart=on-failure) when systemd runs,
 * else in its own session (setsid) with a pid file.
 *
 * Idempotent: user data runs once per instance, but a rerun (by hand, or a
 * cloud-init replay) finds the node running and starts no second one.
 *
 * Every failure is a BootError naming its step (spec, metadata, swarm key,
 * config, files, start) and what failed. The swarm key is never logged.
 */
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { MetadataService } from '@aws-sdk/ec2-metadata-service'
// Static imports: in the bundle (esbuild, ESM), a dynamic import() of these CommonJS packages has no named exports.
import { SSMClient, GetParameterCommand } from '@aws-sdk/client-ssm'
import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager'
import { bootSpecSchema, TAGS, type BootSpec, type SwarmKeySource } from './boot-spec.ts'
import { parseSwarmKey, writeSecretFile } from '../../mesh/swarm-key.ts'
import { deepMerge, isPlainObject } from '../node-config.ts'
import { addressFromLog } from '../started-line.ts'

export const UNIT = 'meshd-burst.service'
/** Ports on the instance when the spec's config names none: meshd's defaults (security groups open them). */
export const DEFAULT_MESH_PORT = 4001
export const DEFAULT_HTTP_PORT = 8080
/** Environment passed through to the node: its IMDS poller and AWS endpoints must be the ones boot used. */
const PASS_ENV = /^(AWS_EC2_METADATA_SERVICE_ENDPOINT|AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE|AWS_ENDPOINT_URL(_[A-Z0-9_]+)?|AWS_REGION|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AWS_CA_BUNDLE|HTTPS?_PROXY|NO_PROXY)$/

export type BootStep = 'spec' | 'metadata' | 'swarm key' | 'config' | 'files' | 'start'

export class BootError extends Error {
  readonly step: BootStep
  constructor (step: BootStep, message: string) {
    super(`boot-ec2: ${step}: ${message}`)
    this.name = 'BootError'
    this.step = step
  }
}

/** What makes this node this instance, from its metadata. */
export interface InstanceFacts {
  instanceId: string
  instanceType: string
  region: string
  zone: string
  spot: boolean
  privateIp: string
  /** The leader's idempotency key (tag meshd:key). */
  key: string
  /** $/h the leader charges (tag meshd:price). */
  price: number
  /** pendingTime of the identity document, epoch ms. */
  launchedAt: number
}

export interface BootInit {
  specFile: string
  /** daemon/config's validator (providers import nothing from daemon/): throws naming the key. */
  validateConfig: (raw: unknown, file: string) => { http: { drain_timeout: number } }
  /** The node name for a launch key (the leader's nodeName, so names match its ledger). */
  nodeName: (key: string) => string
  /** @default process.env */
  env?: NodeJS.ProcessEnv
  /** Progress lines (never a secret). @default stderr */
  log?: (line: string) => void
  /** systemd manages services here. @default /run/systemd/system exists */
  systemd?: boolean
  /** Where a unit file goes. @default /etc/systemd/system */
  unitDir?: string
  /** How long the node may take to log "meshd started". @default 60 s */
  startTimeoutMs?: number
  /** @default the SDK's client (AWS_EC2_METADATA_SERVICE_ENDPOINT honoured) */
  metadata?: Pick<MetadataService, 'request'>
}

export interface BootResult {
  /** `started` now, or `running` already (a rerun). */
  outcome: 'started' | 'running'
  facts: InstanceFacts
  configFile: string
  pid?: number
  unit?: string
  /** The node's mesh address (from its "meshd started" line), when it logged one in time. */
  address?: string
}

function readSpec (file: string): BootSpec {
  let text: string
  try { text = readFileSync(file, 'utf8') } catch (err) { throw new BootError('spec', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}): the user data writes it before running boot-ec2`) }
  let raw: unknown
  try { raw = JSON.parse(text) } catch (err) { throw new BootError('spec', `${file} is not JSON: ${(err as Error).message}`) }
  const r = bootSpecSchema.safeParse(raw)
  if (!r.success) {
    const i = r.error.issues[0]!
    throw new BootError('spec', `${file}: ${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`)
  }
  return r.data
}

/** Reads the instance's identity from IMDSv2 (a token per request, as the SDK's client does). */
export async function readInstanceFacts (md: Pick<MetadataService, 'request'>, endpoint: string): Promise<InstanceFacts> {
  const get = async (path: string, what: string): Promise<string> => {
    try {
      return (await md.request(`/latest/${path}`, {})).trim()
    } catch (err) {
      const msg = (err as Error).message
      if (/404/.test(msg) && path.startsWith('meta-data/tags/instance')) {
        throw new BootError('metadata', `the instance has no tag ${path.split('/').pop()} in its metadata (${what}); the launch sets it, and its launch template must enable InstanceMetadataTags`)
      }
      throw new BootError('metadata', `cannot read ${what} (${path}) from the instance metadata service at ${endpoint}: ${msg}`)
    }
  }
  const instanceId = await get('meta-data/instance-id', 'the instance id')
  const [instanceType, zone, region, lifeCycle, privateIp, key, priceText, doc] = await Promise.all([
    get('meta-data/instance-type', 'the instance type'),
    get('meta-data/placement/availability-zone', 'the zone'),
    get('meta-data/placement/region', 'the region'),
    get('meta-data/instance-life-cycle', 'the market (instance-life-cycle)'),
    get('meta-data/local-ipv4', 'the private address'),
    get(`meta-data/tags/instance/${TAGS.key}`, "the leader's launch key"),
    get(`meta-data/tags/instance/${TAGS.price}`, 'the price the leader charges'),
    get('dynamic/instance-identity/document', 'the identity document')
  ])
  const price = Number(priceText)
  if (!Number.isFinite(price) || price < 0) throw new BootError('metadata', `tag ${TAGS.price} is "${priceText}": expected a non-negative number ($/h)`)
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(privateIp)) throw new BootError('metadata', `local-ipv4 is "${privateIp}": expected an IPv4 address`)
  let launchedAt: number
  try {
    launchedAt = Date.parse((JSON.parse(doc) as { pendingTime?: string }).pendingTime ?? '')
  } catch {
    launchedAt = Number.NaN
  }
  if (!Number.isFinite(launchedAt)) throw new BootError('metadata', 'the identity document has no pendingTime (the launch time)')
  return { instanceId, instanceType, zone, region, spot: lifeCycle === 'spot', privateIp, key, price, launchedAt }
}

/** The swarm key file's text from its source; checked, never logged. */
export async function fetchSwarmKey (source: SwarmKeySource): Promise<string> {
  let text: string | undefined
  let where: string
  if (source.from === 'user_data') {
    where = 'the boot spec (user data)'
    text = source.key
  } else if (source.from === 'ssm') {
    where = `SSM parameter ${source.parameter} in ${source.region}`
    const ssm = new SSMClient({ region: source.region })
    try {
      text = (await ssm.send(new GetParameterCommand({ Name: source.parameter, WithDecryption: true }))).Parameter?.Value
    } catch (err) {
      throw new BootError('swarm key', `cannot read ${where}: ${(err as Error).name}: ${(err as Error).message}`)
    } finally { ssm.destroy() }
  } else {
    where = `Secrets Manager secret ${source.secret_id} in ${source.region}`
    const sm = new SecretsManagerClient({ region: source.region })
    try {
      text = (await sm.send(new GetSecretValueCommand({ SecretId: source.secret_id }))).SecretString
    } catch (err) {
      throw new BootError('swarm key', `cannot read ${where}: ${(err as Error).name}: ${(err as Error).message}`)
    } finally { sm.destroy() }
  }
  if (text === undefined || text === '') throw new BootError('swarm key', `${where} is empty`)
  try {
    parseSwarmKey(text, where)
  } catch (err) {
    // The parser's message names the line that is wrong, never the key.
    throw new BootError('swarm key', (err as Error).message)
  }
  return text.endsWith('\n') ? text : `${text}\n`
}

function portOf (v: unknown, pattern: RegExp): number | undefined {
  const m = typeof v === 'string' ? v.match(pattern) : null
  const port = m === null ? 0 : Number(m[1])
  return port > 0 ? port : undefined
}

/**
 * The node's config, pure: the spec's config, then what this instance is
 * (not overridable): name, instance, region, zone, spot, price, listeners
 * on the private address (ports from the spec's config, else meshd's
 * defaults), announced as such, its files under the spec's paths.
 */
export function bootConfig (spec: BootSpec, f: InstanceFacts, nodeName: (key: string) => string): Record<string, unknown> {
  const base = spec.config
  const mesh = isPlainObject(base.mesh) ? base.mesh : {}
  const http = isPlainObject(base.http) ? base.http : {}
  const meshPort = portOf(Array.isArray(mesh.listen) ? mesh.listen[0] : undefined, /\/tcp\/(\d+)/) ?? DEFAULT_MESH_PORT
  const httpPort = portOf(http.listen, /:(\d+)$/) ?? DEFAULT_HTTP_PORT
  const admin = isPlainObject(base.admin) ? base.admin : {}
  return deepMerge(base, {
    cluster: spec.cluster,
    node_name: nodeName(f.key),
    state_dir: spec.paths.state_dir,
    swarm_key_file: spec.paths.swarm_key,
    voter: false,
    provider: spec.provider,
    region: f.region,
    zone: f.zone,
    spot: f.spot,
    cost_per_hour: f.price,
    instance: { provider: spec.provider, id: f.instanceId, key: f.key, launched_at: Math.floor(f.launchedAt), notices: 'ec2' },
    mesh: { listen: [`/ip4/${f.privateIp}/tcp/${meshPort}`], announce: [`/ip4/${f.privateIp}/tcp/${meshPort}`] },
    http: { listen: `${f.privateIp}:${httpPort}` },
    // /run is not the node's: its socket goes with its state unless the spec says otherwise.
    admin: { socket: typeof admin.socket === 'string' ? admin.socket : join(spec.paths.state_dir, 'admin.sock') }
  })
}

/** The pid recorded by an earlier boot, when that process still runs this config. */
function runningPid (pidFile: string, configFile: string): number | undefined {
  let pid: number
  try { pid = Number(readFileSync(pidFile, 'utf8').trim()) } catch { return undefined }
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(configFile) ? pid : undefined
  } catch { return undefined }
}

function unitActive (): boolean {
  return spawnSync('systemctl', ['is-active', '--quiet', UNIT]).status === 0
}

/** A unit file: the node under systemd, restarted when it fails, with the AWS environment it needs. */
export function unitFile (bin: string, configFile: string, logFile: string, env: Record<string, string>, stopTimeoutSec: number): string {
  const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
  return [
    '[Unit]',
    'Description=meshd burst node (EC2)',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${bin} start --config ${configFile}`,
    ...Object.entries(env).map(([k, v]) => `Environment=${q(`${k}=${v}`)}`),
    `StandardOutput=append:${logFile}`,
    `StandardError=append:${logFile}`,
    'Restart=on-failure',
    'RestartSec=2',
    'KillMode=mixed',
    `TimeoutStopSec=${stopTimeoutSec}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    ''
  ].join('\n')
}

/** Writes a file (not secret) atomically. */
function writeAtomic (file: string, text: string, mode: number): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 })
  const tmp = `${file}.tmp-${process.pid}`
  writeFileSync(tmp, text, { mode })
  renameSync(tmp, file)
}

export async function bootEc2 (init: BootInit): Promise<BootResult> {
  const env = init.env ?? process.env
  const log = init.log ?? ((line: string) => { process.stderr.write(`${line}\n`) })
  const spec = readSpec(init.specFile)
  const endpoint = env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? 'http://169.254.169.254'
  const md = init.metadata ?? new MetadataService({})
  const facts = await readInstanceFacts(md, endpoint)
  log(`boot-ec2: instance ${facts.instanceId} (${facts.instanceType}, ${facts.spot ? 'spot' : 'on-demand'}) in ${facts.zone}, key ${facts.key}, ${facts.privateIp}`)

  const configFile = spec.paths.config
  const pidFile = join(spec.paths.state_dir, 'meshd.pid')
  const systemd = init.systemd ?? existsSync('/run/systemd/system')
  const already = systemd ? (unitActive() ? -1 : undefined) : runningPid(pidFile, configFile)
  if (already !== undefined) {
    log(`boot-ec2: meshd already runs (${systemd ? UNIT : `pid ${already}`}); nothing to do`)
    return { outcome: 'running', facts, configFile, ...(systemd ? { unit: UNIT } : { pid: already }) }
  }

  const swarmKey = await fetchSwarmKey(spec.swarm_key)
  log(`boot-ec2: swarm key from ${spec.swarm_key.from === 'user_data' ? 'the user data' : spec.swarm_key.from === 'ssm' ? `SSM ${spec.swarm_key.parameter}` : `Secrets Manager ${spec.swarm_key.secret_id}`}`)
  const config = bootConfig(spec, facts, init.nodeName)
  let drainMs: number
  try {
    drainMs = init.validateConfig(config, configFile).http.drain_timeout
  } catch (err) {
    throw new BootError('config', (err as Error).message)
  }
  try {
    mkdirSync(spec.paths.state_dir, { recursive: true, mode: 0o700 })
    writeSecretFile(spec.paths.swarm_key, swarmKey)
    writeSecretFile(configFile, JSON.stringify(config, null, 2) + '\n')
  } catch (err) {
    throw new BootError('files', `cannot write the node's files (${configFile}, ${spec.paths.swarm_key}): ${(err as Error).message}`)
  }

  const bin = join(spec.install_dir, 'current', 'bin', 'meshd')
  if (!existsSync(bin)) throw new BootError('start', `${bin} does not exist: the user data installs the bundle into ${spec.install_dir} first`)
  const passed = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => PASS_ENV.test(e[0]) && e[1] !== undefined))
  const logFile = join(spec.paths.state_dir, 'meshd.log')
  let result: BootResult
  if (systemd) {
    const unitDir = init.unitDir ?? '/etc/systemd/system'
    writeAtomic(join(unitDir, UNIT), unitFile(bin, configFile, logFile, passed, Math.ceil(drainMs / 1000) + 30), 0o644)
    for (const args of [['daemon-reload'], ['enable', '--now', UNIT]]) {
      const r = spawnSync('systemctl', args, { encoding: 'utf8' })
      if (r.status !== 0) throw new BootError('start', `systemctl ${args.join(' ')} failed: ${(r.stderr ?? '').trim() || `exit ${r.status}`}`)
    }
    result = { outcome: 'started', facts, configFile, unit: UNIT }
    log(`boot-ec2: started ${UNIT}`)
  } else {
    const out = openSync(logFile, 'a', 0o600)
    // Its own session (setsid), no terminal, stdin closed: it outlives the user data's shell.
    const child = spawn(bin, ['start', '--config', configFile], { detached: true, stdio: ['ignore', out, out], cwd: spec.paths.state_dir, env: { PATH: env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: env.HOME ?? '/root', ...passed } })
    closeSync(out)
    if (child.pid === undefined) throw new BootError('start', `cannot run ${bin}`)
    child.unref()
    writeAtomic(pidFile, `${child.pid}\n`, 0o644)
    result = { outcome: 'started', facts, configFile, pid: child.pid }
    log(`boot-ec2: started meshd (pid ${child.pid}), log ${logFile}`)
  }

  // Wait for "meshd started" so a failure is reported here, in the console output, and not only in its log.
  const deadline = Date.now() + (init.startTimeoutMs ?? 60_000)
  while (Date.now() < deadline) {
    let text = ''
    try { text = readFileSync(logFile, 'utf8') } catch {}
    const address = addressFromLog(text)
    if (address !== null) {
      log(`boot-ec2: meshd is up at ${address}`)
      return { ...result, address }
    }
    const alive = result.pid !== undefined ? runningPid(pidFile, configFile) !== undefined : unitActive()
    if (!alive) throw new BootError('start', `meshd exited before it started; the end of ${logFile}:\n${text.split('\n').slice(-15).join('\n')}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  log(`boot-ec2: meshd has not logged "meshd started" after ${init.startTimeoutMs ?? 60_000} ms; it keeps running (see ${logFile})`)
  return result
}
