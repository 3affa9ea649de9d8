import { existsSync, writeFileSync, mkdirSync, chownSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { hostname, networkInterfaces } from 'node:os'
import { parseCommandArgs, UsageError } from '../common/command.ts'
import { printJson } from '../common/daemon-client.ts'
import { meshdRoot } from '../common/meshd-root.ts'
import { loadConfig, resolveConfigPath, DEFAULT_CONFIG_FILE } from '../../config/load.ts'
import { generateSwarmKey, writeSecretFile, readSwarmKey } from '../../../mesh/swarm-key.ts'
import { initState } from '../../startup/state.ts'
import { DB_FILE } from '../../store/db.ts'

export const help = `usage: meshd init [--cluster NAME] [--state-dir DIR] [--config FILE] [--listen MULTIADDR] [--http HOST:PORT] [--json]

Writes a config (if absent) and a fresh swarm key (if absent), creates this
node's identity and its state database (if absent), and prints the multiaddrs
other nodes use to join it.

On the first node of a mesh, run it as is. On every other node, copy the first
node's swarm key to the same path (it is the shared secret of the private
mesh; keep it mode 0600) before \`meshd start\`, then \`meshd join <multiaddr>\`.

  --cluster NAME      cluster name (default: meshd); peers of other clusters are never admitted
  --state-dir DIR     identity key and database (default: /var/lib/meshd)
  --listen MULTIADDR  mesh listen address (default: /ip4/0.0.0.0/tcp/4001)
  --http HOST:PORT    OpenAI-compatible endpoint (default: 127.0.0.1:8080)
  --owner USER        give the state dir and key files to USER (default, as root with
                      the system config: meshd, if that user exists)`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('init', argv, {
    cluster: { type: 'string' },
    'state-dir': { type: 'string' },
    listen: { type: 'string' },
    http: { type: 'string' },
    owner: { type: 'string' }
  })
  const configPath = resolve(resolveConfigPath(values.config))
  const actions: string[] = []
  if (!existsSync(configPath)) {
    const cluster = values.cluster ?? 'meshd'
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(cluster)) throw new UsageError(`init: --cluster "${cluster}" must be letters, digits, ".", "_" or "-"`)
    const stateDir = resolve(values['state-dir'] ?? '/var/lib/meshd')
    // Off the system paths (a user's own directory), keep everything together.
    const system = configPath === DEFAULT_CONFIG_FILE
    const swarmKeyFile = system ? '/etc/meshd/swarm.key' : join(dirname(configPath), 'swarm.key')
    const adminSocket = system ? '/run/meshd/admin.sock' : join(stateDir, 'admin.sock')
    mkdirSync(dirname(configPath), { recursive: true, mode: 0o755 })
    writeFileSync(configPath, configTemplate({
      cluster,
      stateDir,
      swarmKeyFile,
      adminSocket,
      listen: values.listen ?? '/ip4/0.0.0.0/tcp/4001',
      http: values.http ?? '127.0.0.1:8080',
      configPath
    }), { mode: 0o644, flag: 'wx' })
    actions.push(`wrote ${configPath}`)
  } else {
    actions.push(`kept the existing ${configPath}`)
  }
  const config = loadConfig(configPath)
  if (!existsSync(config.swarm_key_file)) {
    writeSecretFile(config.swarm_key_file, generateSwarmKey())
    actions.push(`wrote a new swarm key to ${config.swarm_key_file} (copy it to every node of the mesh)`)
  } else {
    readSwarmKey(config.swarm_key_file)
    actions.push(`kept the existing swarm key ${config.swarm_key_file}`)
  }
  const state = await initState(config.state_dir)
  actions.push(`${state.created ? 'created' : 'kept'} the node identity in ${config.state_dir} (peer id ${state.identity.peerId.toString()})`)
  const owner = ownerFor(values.owner, configPath)
  if (owner !== null) {
    // The daemon runs as `owner` (systemd User=): it must read the key files
    // that root just wrote, and nobody else may.
    for (const f of [config.state_dir, join(config.state_dir, 'identity.key'), join(config.state_dir, DB_FILE), config.swarm_key_file]) if (existsSync(f)) chownSync(f, owner.uid, owner.gid)
    chownSync(configPath, 0, owner.gid)
    actions.push(`gave ${config.state_dir} and ${config.swarm_key_file} to user ${owner.name}`)
  }
  const addrs = joinAddrs(config.mesh.announce.length > 0 ? config.mesh.announce : config.mesh.listen, state.identity.peerId.toString())
  if (values.json) {
    printJson({ config: configPath, swarm_key_file: config.swarm_key_file, state_dir: config.state_dir, peer: state.identity.peerId.toString(), multiaddrs: addrs })
  } else {
    const join = addrs.length > 0
      ? 'Other nodes join this one with:\n' + addrs.map((a) => `  meshd join ${a}`).join('\n')
      // Port 0 is only chosen when the daemon binds it; a /tcp/0 address would be useless to print.
      : 'The mesh port is chosen when the daemon starts (mesh.listen uses port 0): after `meshd start`,\n`meshd status --json` lists the addresses other nodes join with.'
    process.stdout.write(actions.map((a) => `- ${a}`).join('\n') + '\n\n' + join + '\n')
  }
  return 0
}

/** Listen addresses with 0.0.0.0 expanded to this host's IPv4 addresses, with /p2p/<id>; port 0 ones are left out (not known before start). */
export function joinAddrs (listen: string[], peerId: string): string[] {
  const out: string[] = []
  const ips = Object.values(networkInterfaces()).flat().filter((i) => i !== undefined && i.family === 'IPv4').map((i) => i!.address)
  for (const l of listen) {
    const m = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(l)
    if (m !== null && m[2] === '0') continue
    if (m !== null && m[1] === '0.0.0.0') {
      const external = ips.filter((ip) => !ip.startsWith('127.'))
      for (const ip of external.length > 0 ? external : ['127.0.0.1']) out.push(`/ip4/${ip}/tcp/${m[2]!}/p2p/${peerId}`)
    } else {
      out.push(`${l}/p2p/${peerId}`)
    }
  }
  return out
}

/**
 * The config init writes: what this node needs, then commented examples of
 * the sections an operator adds next. Each example is a block that starts at
 * `# <key>:` and runs over the lines indented after `#`; removing the leading
 * `# ` of its lines gives a valid section (test/cli/cli.test.ts checks it).
 */
export function configTemplate (v: { cluster: string, stateDir: string, swarmKeyFile: string, adminSocket: string, listen: string, http: string, configPath: string }): string {
  const root = meshdRoot()
  return `# meshd config. Every key, its default and what it does: ${root}/docs/configuration.md
# (an annotated example: ${root}/daemon/config/example.yaml). Any key can be
# overridden by an environment variable MESHD_<PATH>, e.g. MESHD_HTTP_LISTEN.
# Check it without starting: meshd config check --config ${v.configPath}
cluster: ${v.cluster}
node_name: ${hostname()}
state_dir: ${v.stateDir}
swarm_key_file: ${v.swarmKeyFile}
voter: true                 # takes part in leader election (always-on nodes)
mesh:
  listen: [${v.listen}]
  bootstrap: []             # peers to dial at start; or use \`meshd join\`
  heartbeat_ms: 1000
http:
  listen: ${v.http}
admin:
  socket: ${v.adminSocket}

# The local inference server; absent, this node only routes. Uncomment and adapt:
# replica:
#   models: [llama3]              # the "model" names it serves
#   slots: 4                      # requests it runs at once; meshd never sends more
#   command: "llama-server -m /models/m.gguf --port 9000 --parallel 4"   # or "sim", the built-in simulator
#   url: http://127.0.0.1:9000    # where that server listens
#   readiness_probe:              # SkyServe's names and meaning
#     path: /health
#     initial_delay_seconds: 120  # loading a model takes a while

# Bursting: the elected leader adds replicas from \`providers\` within a budget
# (spawn's burst_policy names). The defaults:
# burst:
#   mode: manual                  # manual: only on \`meshd burst\`; auto: also follow the queue and request rate
#   cost_budget: 10.0             # dollars per hour for all burst capacity together; never exceeded
#   max_cloud_instances: 20
#   queue_depth_threshold: 100    # auto: burst when more requests than this wait mesh-wide
#   ttl: 8h                       # a burst node retires itself after this ...
#   idle_timeout: 30m             # ... or after this long without a request

# Where burst replicas come from, cheapest first; give every voter the same list.
# kind local runs them as meshd processes on the leader's machine; ssh and aws:
# see docs/configuration.md.
# providers:
#   - name: workstation
#     kind: local
#     max_instances: 4
#     cost_per_hour: 0.30         # what the budget charges for one
#     replica: { command: sim, models: [llama3], slots: 4 }   # what a launched node serves
`
}

function ownerFor (flag: string | undefined, configPath: string): { name: string, uid: number, gid: number } | null {
  if (process.getuid?.() !== 0) return null
  const name = flag ?? (configPath === DEFAULT_CONFIG_FILE ? 'meshd' : undefined)
  if (name === undefined) return null
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`))
  if (line === undefined) {
    if (flag !== undefined) throw new UsageError(`init: --owner ${flag}: no such user`)
    return null
  }
  const f = line.split(':')
  return { name, uid: Number(f[2]), gid: Number(f[3]) }
}
