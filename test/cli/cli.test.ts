/**
 * The command line as scripts use it: exit statuses (0 ok, 1 failed, 2 bad
 * usage or config), messages that name the file and key, and the launcher
 * finding the project's Node 24 from any directory and through a symlink.
 */
import t from 'tap'
import { existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { DaemonProcess, MESHD, REPO, writeSwarmKey } from '../helpers/daemon.ts'
import { loadConfig } from '../../daemon/config/load.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

t.test('usage errors exit 2', async (t) => {
  let r = await meshd([])
  t.equal(r.code, 2)
  t.match(r.stdout, /usage: meshd <command>/)
  r = await meshd(['frobnicate'])
  t.equal(r.code, 2)
  t.match(r.stderr, /unknown command "frobnicate"/)
  r = await meshd(['status', '--bogus'])
  t.equal(r.code, 2)
  t.match(r.stderr, /status: Unknown option '--bogus'/)
  r = await meshd(['join'])
  t.equal(r.code, 2)
  t.match(r.stderr, /expected at least one multiaddr/)
  r = await meshd(['join', '10.0.0.1:4001'])
  t.equal(r.code, 2)
  t.match(r.stderr, /is not a multiaddr/)
  r = await meshd(['status', '--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /usage: meshd status/)
})

t.test('version runs on the bundled Node 24 from any directory and through a symlink', async (t) => {
  const dir = tempDir(t)
  const link = join(dir, 'meshd')
  symlinkSync(MESHD, link)
  for (const [how, bin, cwd] of [['direct', MESHD, '/'], ['symlink', link, dir]] as const) {
    const r = await meshd(['version', '--json'], { bin, cwd, env: { PATH: '/usr/bin:/bin' } })
    t.equal(r.code, 0, `${how}: exit 0; stderr: ${r.stderr}`)
    const v = JSON.parse(r.stdout) as { meshd: string, node: string, libp2p: string }
    t.match(v.node, /^24\./, `${how}: runs on Node 24 although PATH has only the system Node`)
    t.match(v.libp2p, /^3\./)
    t.equal(v.meshd, (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version)
  }
})

t.test('init writes a config, a private swarm key and an identity; a second init keeps them', async (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'etc', 'meshd.yaml')
  const r = await meshd(['init', '--config', config, '--state-dir', join(dir, 'state'), '--cluster', 'lab', '--listen', '/ip4/127.0.0.1/tcp/4101'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /meshd join \/ip4\/127\.0\.0\.1\/tcp\/4101\/p2p\/12D3KooW\w+/)
  t.match(readFileSync(config, 'utf8'), /^cluster: lab$/m)
  const key = join(dir, 'etc', 'swarm.key')
  t.equal(statSync(key).mode & 0o777, 0o600, 'the swarm key is readable by its owner only')
  t.match(readFileSync(key, 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
  t.ok(existsSync(join(dir, 'state', 'identity.key')))
  const keyBefore = readFileSync(key, 'utf8')
  const again = await meshd(['init', '--config', config, '--json'])
  t.equal(again.code, 0)
  const doc = JSON.parse(again.stdout) as { peer: string }
  t.match(r.stdout, doc.peer, 'same identity')
  t.equal(readFileSync(key, 'utf8'), keyBefore, 'the swarm key is never replaced')
})

t.test('init writes commented examples of replica, burst and providers; each one uncommented is valid', async (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'meshd.yaml')
  const r = await meshd(['init', '--config', config, '--state-dir', join(dir, 'state'), '--listen', '/ip4/127.0.0.1/tcp/0'])
  t.equal(r.code, 0, r.stderr)
  const text = readFileSync(config, 'utf8')
  t.match(text, new RegExp(`^# meshd config\\. Every key, its default and what it does: ${REPO.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/docs/configuration\\.md$`, 'm'), 'points to the reference that ships')
  t.ok(existsSync(join(REPO, 'docs/configuration.md')), 'and it is there')
  t.notMatch(text, /INTERFACE\.md/, 'nothing that does not ship')

  // An example: `# key:` and the lines indented after `#` that follow it.
  const lines = text.split('\n')
  const blocks = new Map<string, number[]>()
  lines.forEach((line, i) => {
    const head = /^# (\w+):\s*(#.*)?$/.exec(line)
    if (head === null) return
    const block = [i]
    for (let j = i + 1; j < lines.length && /^# {2,}\S/.test(lines[j]!); j++) block.push(j)
    blocks.set(head[1]!, block)
  })
  t.same([...blocks.keys()], ['replica', 'burst', 'providers'])
  const uncomment = (keys: string[]): string => lines.map((l, i) => keys.some((k) => blocks.get(k)!.includes(i)) ? l.slice(2) : l).join('\n')
  const env = {}
  const plain = loadConfig(config, env)
  for (const key of blocks.keys()) {
    const file = join(dir, `with-${key}.yaml`)
    writeFileSync(file, uncomment([key]))
    const c = loadConfig(file, env)
    t.not(blocks.get(key)!.length, 1, `${key}: an example with content`)
    if (key === 'replica') t.match(c.replica, { models: ['llama3'], slots: 4, url: 'http://127.0.0.1:9000', readiness_probe: { path: '/health', initial_delay_seconds: 120 } })
    if (key === 'burst') t.same(c, plain, 'the burst example shows the defaults, as it says')
    if (key === 'providers') t.match(c.providers, [{ name: 'workstation', kind: 'local', max_instances: 4, cost_per_hour: 0.3, replica: { command: 'sim', models: ['llama3'] } }])
  }
  const all = join(dir, 'all.yaml')
  writeFileSync(all, uncomment([...blocks.keys()]))
  const check = await meshd(['config', 'check', '--config', all])
  t.equal(check.code, 0, `all examples together: ${check.stderr}`)
  t.match(check.stdout, /replica llama3 \(4 slots, llama-server .*\), providers workstation \(local\), burst manual within 10\.00\/h/)
})

t.test('init with a port-0 listen prints no useless /tcp/0 address, but says where to look', async (t) => {
  const dir = tempDir(t)
  const r = await meshd(['init', '--config', join(dir, 'meshd.yaml'), '--state-dir', join(dir, 'state'), '--listen', '/ip4/127.0.0.1/tcp/0'])
  t.equal(r.code, 0, r.stderr)
  t.notMatch(r.stdout, /tcp\/0\//, 'no join address with port 0')
  t.match(r.stdout, /meshd status --json/, 'points at status for the bound addresses')
})

t.test('start with a bad config exits 2 naming the file and the key', async (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'bad.yaml')
  writeFileSync(config, 'cluster: x\nmesh:\n  heartbeat_ms: fast\n')
  let r = await meshd(['start', '--config', config])
  t.equal(r.code, 2)
  t.equal(r.stderr.trim(), `meshd: ${config}: mesh.heartbeat_ms: expected number, got string "fast"`)
  r = await meshd(['start'], { env: { MESHD_CONFIG: config } })
  t.equal(r.code, 2, '$MESHD_CONFIG names the config')
  writeFileSync(config, `cluster: x\nswarm_key_file: ${join(dir, 'missing.key')}\nstate_dir: ${join(dir, 's')}\nadmin: {socket: ${join(dir, 'a.sock')}}\nhttp: {listen: "127.0.0.1:0"}\nmesh: {listen: [/ip4/127.0.0.1/tcp/0]}\n`)
  r = await meshd(['start', '--config', config])
  t.equal(r.code, 2, 'a missing swarm key is a config problem')
  t.match(r.stderr, new RegExp(`${join(dir, 'missing.key')}: cannot read the swarm key \\(ENOENT\\)`))
  r = await meshd(['start', '--config', config], { env: { MESHD_MESH_HEARTBEAT_MS: 'x' } })
  t.equal(r.code, 2)
  t.match(r.stderr, /mesh\.heartbeat_ms: expected number, got string "x"/)
})

t.test('config check validates file and environment without starting', async (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'meshd.yaml')
  writeFileSync(config, `cluster: lab\nnode_name: n1\nadmin: {socket: ${join(dir, 'admin.sock')}}\nhttp: {api_keys: [sk-secret]}\nreplica: {models: [llama3], command: sim}\nproviders:\n  - {name: ws, kind: local, cost_per_hour: 0.3, replica: {models: [llama3]}}\n`)
  let r = await meshd(['config', 'check', '--config', config])
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, `${config}: ok: cluster lab, node n1 (voter), replica llama3 (4 slots, sim), providers ws (local), burst manual within 10.00/h, http 127.0.0.1:8080\n`, 'one line')
  t.notOk(existsSync(join(dir, 'admin.sock')), 'nothing was started')

  r = await meshd(['config', 'check'], { env: { MESHD_CONFIG: config, MESHD_HTTP_LISTEN: '0.0.0.0:9090' } })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /http 0\.0\.0\.0:9090; from the environment: MESHD_HTTP_LISTEN$/m, 'the variables it applied are named')

  r = await meshd(['config', 'check', '--config', config, '--json'], { env: { MESHD_BURST_COST_BUDGET: '2' } })
  t.equal(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout) as { ok: boolean, overrides: unknown, config: { burst: { cost_budget: number, ttl: number }, http: { api_keys: string[] } } }
  t.equal(doc.ok, true)
  t.same(doc.overrides, [{ variable: 'MESHD_BURST_COST_BUDGET', key: 'burst.cost_budget' }])
  t.equal(doc.config.burst.cost_budget, 2)
  t.equal(doc.config.burst.ttl, 8 * 3_600_000, 'defaults filled in, durations in ms')
  t.same(doc.config.http.api_keys, ['(redacted)'], 'no secrets in a deploy log')
  t.notMatch(r.stdout, /sk-secret/)

  r = await meshd(['config', 'check', '--config', config], { env: { MESHD_HTTP_LISTEN: 'localhost' } })
  t.equal(r.code, 2)
  t.equal(r.stderr, 'meshd: environment MESHD_HTTP_LISTEN: http.listen: expected host:port such as 127.0.0.1:8080\n', 'the variable is named, not the file')
  r = await meshd(['config', 'check', '--config', config], { env: { MESHD_PROVIDERS_0_KIND: 'k8s' } })
  t.equal(r.code, 2)
  t.match(r.stderr, /^meshd: environment MESHD_PROVIDERS_0_KIND: providers\.0\.kind: unknown provider kind "k8s"; expected local \(.+\), ssh \(.+\) or aws \(.+\)\n$/, 'the kinds that exist, in words')
  t.notMatch(r.stderr, /Invalid discriminator|'local' \| 'ssh'/, 'not the validator\'s raw text')

  writeFileSync(config, 'cluster: lab\nburst:\n  ttl: forever\n')
  r = await meshd(['config', 'check', '--config', config])
  t.equal(r.code, 2)
  t.equal(r.stderr, `meshd: ${config}: burst.ttl: expected a duration like 30s, 5m, 8h or a number of seconds, got "forever"\n`)
  r = await meshd(['config', 'check', '--config', join(dir, 'missing.yaml')])
  t.equal(r.code, 2)
  t.match(r.stderr, /missing\.yaml: \(file\): expected an existing file/)
  r = await meshd(['config'])
  t.equal(r.code, 2)
  t.match(r.stderr, /config: expected a subcommand: check/)
  r = await meshd(['config', 'lint'])
  t.equal(r.code, 2)
  t.match(r.stderr, /unknown subcommand "lint"/)
})

t.test('commands that need the daemon fail with exit 1 when it is not running', async (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'c.yaml')
  writeFileSync(config, `cluster: x\nadmin: {socket: ${join(dir, 'none.sock')}}\n`)
  const r = await meshd(['status', '--config', config])
  t.equal(r.code, 1)
  t.match(r.stderr, /cannot reach the daemon at .*none\.sock \(ENOENT\): is the daemon running\?/)
})

t.test('against a running daemon: status, join errors, the socket mode, leave', async (t) => {
  const dir = tempDir(t)
  const key = writeSwarmKey(dir)
  const d = await DaemonProcess.start(t, dir, { name: 'solo', swarmKeyFile: key })
  t.equal(statSync(d.socket).mode & 0o777, 0o660, 'the admin socket is for the daemon user and group only')

  const table = await meshd(['status', '--config', d.configPath])
  t.equal(table.code, 0)
  t.match(table.stdout, /^Mesh test: 1\/1 members alive · leader none/m)
  t.match(table.stdout, /NAME\s+ID\s+PROVIDER\s+REGION\s+STATE\s+LOAD\s+REPLICA\s+COST\/H\s+LAST SEEN/)
  t.match(table.stdout, /solo \(self\)\s+12D3KooW…\w+\s+static\s+local\s+alive/)
  t.comment(`meshd status answered in ${Math.round(table.ms)} ms (process start included)`)

  const json = await meshd(['status', '--json', '--config', d.configPath])
  const doc = JSON.parse(json.stdout) as { self: string, members: Array<{ id: string, state: string }> }
  t.equal(doc.self, d.peerId)
  t.match(doc, { cluster: 'test', leader: null, term: 0, members: [{ id: d.peerId, name: 'solo', state: 'alive', voter: true }] })

  const bad = await meshd(['join', '--config', d.configPath, '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLi3bFCrYmYhHP5mrRBnARLprYy8REb6UGGBaRPkxwPGk'])
  t.equal(bad.code, 1, 'joining through an unreachable peer fails')
  t.match(bad.stderr, /could not reach any of 1 peer/)

  const leave = await meshd(['leave', '--config', d.configPath])
  t.equal(leave.code, 0)
  const exit = await d.exited()
  t.same(exit, { code: 0, signal: null }, 'the daemon exits 0 after leave')
  t.notOk(existsSync(d.socket), 'the admin socket is removed')
})

t.test('SIGTERM stops the daemon with exit 0', async (t) => {
  const dir = tempDir(t)
  const d = await DaemonProcess.start(t, dir, { name: 'term', swarmKeyFile: writeSwarmKey(dir) })
  d.kill('SIGTERM')
  t.same(await d.exited(), { code: 0, signal: null })
  t.ok(d.logs.some((l) => l.msg === 'meshd stopped'), 'it logged its stop')
})

t.test('a second daemon on the same admin socket refuses to start', async (t) => {
  const dir = tempDir(t)
  const key = writeSwarmKey(dir)
  const first = await DaemonProcess.start(t, dir, { name: 'one', swarmKeyFile: key })
  const r = await meshd(['start', '--config', first.configPath])
  t.equal(r.code, 2, 'the admin socket in use is a start-up conflict the operator resolves: exit 2')
  t.equal(r.stderr.trim(), `meshd: could not start: address in use: ${first.socket} (admin.socket); another process listens there (another meshd?): stop it or change admin.socket`)
  await waitFor(async () => (await first.status()).members.length === 1, { timeoutMs: 2000, what: 'the first daemon to still answer' })
})
