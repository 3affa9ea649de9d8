/**
 * `meshd start` refuses what it cannot run with, as the real process: exit 2
 * and one line naming the key (or the file) and the fix, never exit 1 with
 * an internal name or a stack, and never a hang. Each case here failed so
 * before (a /proc state_dir spun at 100% CPU until killed).
 */
import t, { type Test } from 'tap'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import type { Teardown } from '../helpers/tmp.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

/** A config of a node that would start, with `extra` YAML lines (which replace sections of the same name). */
function config (dir: string, extra: Record<string, string> = {}): string {
  const sections: Record<string, string> = {
    cluster: 'x',
    swarm_key_file: writeSwarmKey(dir),
    state_dir: join(dir, 'state'),
    admin: `{socket: ${join(dir, 'admin.sock')}}`,
    http: '{listen: "127.0.0.1:0"}',
    mesh: '{listen: [/ip4/127.0.0.1/tcp/0]}',
    ...extra
  }
  const file = join(dir, 'meshd.yaml')
  writeFileSync(file, Object.entries(sections).map(([k, v]) => `${k}: ${v}\n`).join(''))
  return file
}

/** Starts meshd; it must exit by itself (a hang fails the test when the helper kills it). */
async function start (file: string): Promise<{ code: number | null, stderr: string }> {
  return meshd(['start', '--config', file], { timeoutMs: 20_000 })
}

/** A TCP port on loopback held by this test until teardown. */
async function heldPort (t: Teardown): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.close() })
  return (server.address() as { port: number }).port
}

function oneCleanLine (t: Test, stderr: string): void {
  t.equal(stderr.trim().split('\n').length, 1, `one line on stderr: ${stderr}`)
  t.notMatch(stderr, /\n\s+at |Error:|faultTolerance/, 'no stack, no internal advice')
}

t.test('state_dir that is a file, or has a file on its path', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'plain'), 'x')
  let file = config(dir, { state_dir: join(dir, 'plain') })
  let r = await start(file)
  t.equal(r.code, 2)
  t.equal(r.stderr.trim(), `meshd: ${file}: state_dir: ${join(dir, 'plain')} is not a directory; expected a directory meshd can write (its identity and database live there)`)
  file = config(dir, { state_dir: join(dir, 'plain', 'sub') })
  r = await start(file)
  t.equal(r.code, 2)
  t.match(r.stderr, `state_dir: ${join(dir, 'plain')}, on its path, is not a directory`)
})

t.test('state_dir under /proc exits 2 at once instead of spinning', async (t) => {
  const dir = tempDir(t)
  const file = config(dir, { state_dir: '/proc/meshd-test-state' })
  const r = await start(file)
  t.equal(r.code, 2)
  t.equal(r.stderr.trim(), `meshd: ${file}: state_dir: cannot create /proc/meshd-test-state (ENOENT); expected a directory meshd can create and write (its identity and database live there)`)
})

t.test('a swarm key or identity key readable by group or others is refused with the chmod that fixes it', async (t) => {
  const dir = tempDir(t)
  const file = config(dir)
  const key = join(dir, 'swarm.key')
  chmodSync(key, 0o644)
  let r = await start(file)
  t.equal(r.code, 2)
  t.equal(r.stderr.trim(), `meshd: ${key}: swarm_key_file: readable by group or others (mode 0644); expected a private key only its owner can read (mode 0600, as ssh asks of private keys): run \`chmod 600 ${key}\``)
  chmodSync(key, 0o600)

  // An identity made by a first start, then opened up.
  const d = await DaemonProcess.start(t, join(dir, 'cluster'), { name: 'id', swarmKeyFile: key })
  d.kill('SIGTERM')
  await d.exited()
  const identity = join(d.dir, 'state', 'identity.key')
  chmodSync(identity, 0o640)
  r = await meshd(['start', '--config', d.configPath], { timeoutMs: 20_000 })
  t.equal(r.code, 2)
  t.match(r.stderr, `meshd: ${identity}: state_dir (identity.key): readable by group or others (mode 0640)`)
  t.match(r.stderr, `run \`chmod 600 ${identity}\``)
  chmodSync(identity, 0o600)
  await d.restart()
  t.ok(d.running, 'with the mode fixed, the same node starts')
})

t.test('a mesh or HTTP port in use is named with its key', async (t) => {
  const dir = tempDir(t)
  const port = await heldPort(t)
  let r = await start(config(dir, { mesh: `{listen: [/ip4/127.0.0.1/tcp/${port}]}` }))
  t.equal(r.code, 2)
  t.match(r.stderr, new RegExp(`^meshd: could not start: address in use: /ip4/127\\.0\\.0\\.1/tcp/${port} \\(mesh\\.listen\\); `))
  oneCleanLine(t, r.stderr)
  r = await start(config(dir, { http: `{listen: "127.0.0.1:${port}"}` }))
  t.equal(r.code, 2)
  t.match(r.stderr, new RegExp(`^meshd: could not start: address in use: 127\\.0\\.0\\.1:${port} \\(http\\.listen\\); `))
  oneCleanLine(t, r.stderr)
})

t.test('values the old patterns let through exit 2 naming the key, not 1 with an internal name', async (t) => {
  const dir = tempDir(t)
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ http: '{listen: "127.0.0.1:99999"}' }, /http\.listen: expected host:port .*port 99999 is above 65535/],
    [{ mesh: '{listen: [/ip4/127.0.0.1/tcp/99999]}' }, /mesh\.listen\.0: expected a multiaddr .*port 99999 is above 65535/],
    [{ mesh: '{listen: [/ip4/999.1.1.1/tcp/4001]}' }, /mesh\.listen\.0: expected a multiaddr .*"999\.1\.1\.1" is not an IPv4 address/],
    [{ election: '{election_timeout_min_ms: 3000, election_timeout_max_ms: 2000}' }, /election\.election_timeout_max_ms: expected more than election\.election_timeout_min_ms \(3000\)/],
    [{ election: '{heartbeat_ms: 5000}' }, /election\.heartbeat_ms: expected less than the leader's lease/]
  ]
  for (const [extra, pattern] of cases) {
    const r = await start(config(dir, extra))
    t.equal(r.code, 2, JSON.stringify(extra))
    t.match(r.stderr, pattern)
    oneCleanLine(t, r.stderr)
  }
})

t.test('a YAML alias bomb is a config error naming the file', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'bomb.yaml')
  const levels = 'abcdefghi'.split('')
  writeFileSync(file, ['cluster: x', 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ...levels.slice(1).map((l, i) => `${l}: &${l} [${Array(9).fill(`*${levels[i]!}`).join(',')}]`)].join('\n') + '\n')
  for (const args of [['start', '--config', file], ['config', 'check', '--config', file]]) {
    const r = await meshd(args, { timeoutMs: 20_000 })
    t.equal(r.code, 2, args.join(' '))
    t.equal(r.stderr.trim(), `meshd: ${file}: (document): expected YAML whose aliases (*name) expand to a bounded size; these expand past the limit of 100 (an alias bomb?)`)
  }
})

t.test('state_dir made with the levels it lacks', async (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'c'))
  const d = await DaemonProcess.start(t, join(dir, 'c'), { name: 'deep', swarmKeyFile: writeSwarmKey(dir), config: { state_dir: join(dir, 'a', 'b', 'state') } })
  t.ok(d.running, 'a state_dir whose parents do not exist yet is made, as before')
})

t.test('readiness_probe.initial_delay_seconds: 0 is accepted and the replica becomes ready (it was killed before reporting its port, forever)', async (t) => {
  const dir = tempDir(t)
  const d = await DaemonProcess.start(t, dir, {
    name: 'eager',
    swarmKeyFile: writeSwarmKey(dir),
    config: { replica: { models: ['m'], slots: 1, command: 'sim', readiness_probe: { initial_delay_seconds: 0, period_seconds: 1 } } }
  })
  await waitFor(async () => (await d.status()).members.find((m) => m.id === d.peerId)?.replica?.ready === true, { timeoutMs: 15_000, what: 'the replica to be ready' })
  t.notOk(d.logs.some((l) => /not ready within/.test(String(l.msg)) || /not ready within/.test(String((l as { reason?: unknown }).reason))), 'no run was torn down on the way')
})
