/**
 * What an EC2 burst node boots from, pure (no I/O): the boot spec
 * (boot-spec.ts) and the POSIX sh user data that installs the bundle, writes
 * the spec and hands over to `meshd boot-ec2`.
 *
 * The user data lives in a launch template shared by every launch with the
 * same settings (CreateFleet cannot change user data per call), so nothing
 * per instance is in it: the node config is built with node-config.ts'
 * layers (what a burst node needs, the provider's defaults, the request's
 * node.config) and then loses what boot fills in from instance metadata
 * (BOOT_FILLED). Bootstrap peers are sorted so the same mesh gives the same
 * script, hence the same template.
 */
import type { LaunchRequest } from '../types.ts'
import { nodeConfig, isPlainObject } from '../node-config.ts'
import { shq, unpackScript } from '../install-script.ts'
import { BOOT_SPEC_PATH, BOOT_SPEC_VERSION, bootSpecSchema, type BootSpec, type SwarmKeySource } from './boot-spec.ts'

/** Where boot writes the node's files on the instance. */
export const BURST_PATHS = { config: '/etc/meshd/meshd.json', swarm_key: '/etc/meshd/swarm.key', state_dir: '/var/lib/meshd' } as const

/** The node's listeners on the instance: every interface (its security groups decide who may connect). */
export const BURST_LISTEN = { mesh: ['/ip4/0.0.0.0/tcp/4001'], http: '0.0.0.0:8080' } as const

/** Top-level config keys that differ per instance: boot sets them from instance metadata and tags. */
export const BOOT_FILLED = ['node_name', 'instance', 'region', 'zone', 'spot', 'cost_per_hour'] as const

/** EC2 refuses user data over 16 KB (before base64). */
export const MAX_USER_DATA_BYTES = 16 * 1024

const SPEC_EOF = 'MESHD_BOOT_SPEC_EOF'

export interface BurstConfigInput {
  provider: string
  req: LaunchRequest
  /** The provider's defaults (burst ttl / idle timeout, log level ...). */
  defaults: Record<string, unknown>
}

/** The node config of the spec: node-config.ts' layers, less what boot fills in. */
export function burstNodeConfig (i: BurstConfigInput): Record<string, unknown> {
  const req: LaunchRequest = { ...i.req, bootstrap: { peers: [...new Set(i.req.bootstrap.peers)].sort() } }
  const c = nodeConfig({
    provider: i.provider,
    region: req.offering.region,
    costPerHour: 0,
    swarmKeyFile: BURST_PATHS.swarm_key,
    stateDir: BURST_PATHS.state_dir,
    socket: `${BURST_PATHS.state_dir}/admin.sock`,
    id: 'boot',
    launchedAt: 0,
    req,
    defaults: i.defaults,
    listen: { mesh: [...BURST_LISTEN.mesh], http: BURST_LISTEN.http }
  })
  for (const k of BOOT_FILLED) Reflect.deleteProperty(c, k)
  if (isPlainObject(c.mesh)) Reflect.deleteProperty(c.mesh, 'announce')
  return c
}

export interface BootSpecInput {
  provider: string
  cluster: string
  installDir: string
  config: Record<string, unknown>
  swarmKey: SwarmKeySource
}

/** The spec, checked against its schema (a bad one fails here, on the leader, not on the instance). */
export function bootSpec (i: BootSpecInput): BootSpec {
  return bootSpecSchema.parse({
    v: BOOT_SPEC_VERSION,
    provider: i.provider,
    cluster: i.cluster,
    config: i.config,
    swarm_key: i.swarmKey,
    paths: { ...BURST_PATHS },
    install_dir: i.installDir
  })
}

/**
 * The swarm key source of the spec. `ssm` / `secrets_manager` name their
 * resource; its region is the ARN's when an ARN is given, else the region
 * the instance launches in (the parameter must exist there).
 */
export function swarmKeySource (cfg: { from: 'user_data' | 'ssm' | 'secrets_manager', parameter?: string | undefined, secret_id?: string | undefined }, region: string, keyText: () => string): SwarmKeySource {
  if (cfg.from === 'ssm') return { from: 'ssm', parameter: cfg.parameter!, region: arnRegion(cfg.parameter!) ?? region }
  if (cfg.from === 'secrets_manager') return { from: 'secrets_manager', secret_id: cfg.secret_id!, region: arnRegion(cfg.secret_id!) ?? region }
  return { from: 'user_data', key: keyText() }
}

function arnRegion (s: string): string | null {
  const m = /^arn:[^:]+:[^:]+:([a-z0-9-]+):/.exec(s)
  return m === null ? null : m[1]!
}

export interface UserDataInput {
  spec: BootSpec
  /** The bundle to fetch; null: the AMI carries meshd in install_dir/current already. */
  bundle: { url: string, sha256: string } | null
}

/**
 * The user data script. `set -eu`: any failed step ends the boot (cloud-init
 * logs it in /var/log/cloud-init-output.log); the instance then never joins
 * and the leader terminates it after its launch timeout.
 */
export function userDataScript (i: UserDataInput): string {
  const I = i.spec.install_dir.replace(/\/+$/, '') || '/'
  const q = shq(I)
  const json = JSON.stringify(i.spec)
  const lines = [
    '#!/bin/sh',
    `# meshd burst node (cluster ${oneLine(i.spec.cluster)}, provider ${oneLine(i.spec.provider)}): install meshd, write its boot spec, run \`meshd boot-ec2\`.`,
    'set -eu',
    'umask 022',
    `mkdir -p ${q}`
  ]
  if (i.bundle === null) {
    lines.push(`[ -x ${q}/current/bin/meshd ] || { echo "meshd: no bundle_url configured and no meshd in ${oneLine(I)}/current on this image" >&2; exit 1; }`)
  } else {
    const S = shq(i.bundle.sha256)
    const U = shq(i.bundle.url)
    const f = `${I}/.download-boot.tar.gz`
    const F = shq(f)
    lines.push(
      `if [ "$(sed -n 's/.*"sha256":"\\([0-9a-f]*\\)".*/\\1/p' ${q}/installed.json 2>/dev/null)" = ${S} ] && [ -x ${q}/current/bin/meshd ]; then`,
      `  echo "meshd: bundle ${i.bundle.sha256.slice(0, 12)} already installed"`,
      'else',
      '  if command -v curl >/dev/null 2>&1; then',
      `    curl -fsSL --retry 5 --retry-delay 2 --connect-timeout 10 -o ${F} ${U}`,
      '  elif command -v wget >/dev/null 2>&1; then',
      `    wget -q -T 30 -t 5 -O ${F} ${U}`,
      '  else',
      '    echo "meshd: neither curl nor wget on this image: cannot fetch the bundle" >&2; exit 1',
      '  fi',
      // A subshell: unpackScript's EXIT trap (removing the download and temporaries) runs when it ends, before the exec below.
      '  (',
      unpackScript(I, f, i.bundle.sha256, null, 'boot', 'downloaded').trimEnd(),
      '  )',
      'fi'
    )
  }
  const P = shq(BOOT_SPEC_PATH)
  const T = shq(`${BOOT_SPEC_PATH}.tmp`)
  const dir = BOOT_SPEC_PATH.slice(0, BOOT_SPEC_PATH.lastIndexOf('/'))
  lines.push(
    `mkdir -p ${shq(dir)}`,
    `( umask 077; cat > ${T} <<'${SPEC_EOF}'`,
    json,
    SPEC_EOF,
    `chmod 600 ${T}; mv -f ${T} ${P} )`,
    `exec ${shq(`${I}/current/bin/meshd`)} boot-ec2 --spec ${P}`
  )
  return lines.join('\n') + '\n'
}

function oneLine (s: string): string {
  return s.replace(/[\r\n]/g, ' ')
}

/** The script as EC2 wants it in a launch template (base64), refusing one EC2 would refuse. */
export function encodeUserData (script: string): string {
  const bytes = Buffer.byteLength(script, 'utf8')
  if (bytes > MAX_USER_DATA_BYTES) throw new Error(`the user data is ${bytes} bytes; EC2 takes at most ${MAX_USER_DATA_BYTES} (a long providers[].config or many bootstrap peers?)`)
  return Buffer.from(script, 'utf8').toString('base64')
}
