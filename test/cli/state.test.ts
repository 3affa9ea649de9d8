/**
 * Lost state at `meshd start`, as the real process sees it (issue 12 item
 * 3). Before: an emptied or deleted meshd.db beside identity.key started a
 * fresh node at incarnation 1, which its peers dropped as stale (dead to
 * them, no traffic); a deleted identity.key gave a new peer id without a
 * word. Now start refuses both with exit 2 and one line naming the files;
 * `--reset-state` accepts the loss, and the node is alive on every member
 * within 5 s.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { DaemonProcess, startChain, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { aliveOn } from '../../daemon/localmesh/cluster.ts'

async function startRefused (d: DaemonProcess, args: string[] = []): Promise<{ code: number | null, stderr: string }> {
  return meshd(['start', '--config', d.configPath, ...args], { timeoutMs: 20_000 })
}

/**
 * Every viewer lists `id` alive and has accepted a heartbeat of it within
 * the last 2.5 heartbeats: a member whose heartbeats are dropped as stale
 * is listed alive for a moment after it reconnects, but is not heard.
 */
async function hearing (viewers: DaemonProcess[], id: string): Promise<boolean> {
  for (const v of viewers) {
    const m = (await v.status()).members.find((x) => x.id === id)
    if (m === undefined || m.state !== 'alive' || m.last_seen_ms > 2500) return false
  }
  return true
}

/** Stops a daemon and waits for it (SIGTERM: it drains, its WAL is checkpointed). */
async function stopped (d: DaemonProcess): Promise<void> {
  d.kill('SIGTERM')
  await d.exited()
}

t.test('an emptied meshd.db beside identity.key: refused; with --reset-state, alive on every member within 5 s', async (t) => {
  const dir = tempDir(t)
  const nodes = await startChain(t, dir, 3, { swarmKeyFile: writeSwarmKey(dir) })
  const [a, b, c] = nodes as [DaemonProcess, DaemonProcess, DaemonProcess]
  const ids = nodes.map((n) => n.peerId)
  await waitFor(async () => aliveOn(nodes, ids), { timeoutMs: 15_000, what: 'all three alive everywhere' })
  // One ordinary restart, so that c's peers hold a later incarnation than a first start's.
  await stopped(c)
  await c.restart()
  await waitFor(async () => aliveOn(nodes, ids), { timeoutMs: 15_000, what: 'c alive again after a restart' })
  await stopped(c)

  const db = join(c.dir, 'state', 'meshd.db')
  truncateSync(db, 0)
  const r = await startRefused(c)
  t.equal(r.code, 2, r.stderr)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.match(r.stderr, `meshd: could not start: ${db} is empty but ${join(c.dir, 'state', 'identity.key')} exists (peer id ${c.peerId}): this node's state was lost`)
  t.match(r.stderr, 'or run `meshd start --reset-state` to start with a fresh state under the same peer id')

  // The reset node knows no peers any more: as a real one would, it finds the mesh through mesh.bootstrap.
  const config = JSON.parse(readFileSync(c.configPath, 'utf8')) as { mesh: Record<string, unknown> }
  config.mesh.bootstrap = [a.joinAddr]
  writeFileSync(c.configPath, JSON.stringify(config))
  await c.restart(['--reset-state'])
  const started = performance.now()
  t.equal(c.peerId, ids[2], 'the same peer id')
  t.ok(c.logs.some((l) => l.level === 'warn' && /--reset-state given: starting with a fresh state under the same peer id/.test(l.msg)), 'the reset is logged')
  await waitFor(async () => await aliveOn(nodes, ids) && await hearing([a, b], c.peerId), { timeoutMs: 5000, intervalMs: 100, what: 'the reset node alive and heard on every member' })
  t.pass(`alive and heard on every member ${Math.round(performance.now() - started)} ms after it started`)
  // And it stays so: heard all along for the next 5 s (its heartbeats are not dropped as stale).
  const until = performance.now() + 5000
  let heard = true
  while (heard && performance.now() < until) {
    heard = await hearing([a, b], c.peerId)
    await new Promise<void>((resolve) => { setTimeout(resolve, 250) }) // the poll interval of an observation window
  }
  t.ok(heard, 'heard on every member all along the next 5 s')
})

t.test('a deleted meshd.db is refused too, and a restart of a whole node is not', async (t) => {
  const dir = tempDir(t)
  const d = await DaemonProcess.start(t, dir, { name: 'solo', swarmKeyFile: writeSwarmKey(dir) })
  await stopped(d)
  await d.restart()
  t.ok(d.running, 'a whole state dir starts as before')
  await stopped(d)
  rmSync(join(d.dir, 'state', 'meshd.db'))
  const r = await startRefused(d)
  t.equal(r.code, 2)
  t.match(r.stderr, `${join(d.dir, 'state', 'meshd.db')} is missing but`)
})

t.test('a deleted identity.key beside the database: refused; with --reset-state, a new node (database moved aside)', async (t) => {
  const dir = tempDir(t)
  const d = await DaemonProcess.start(t, dir, { name: 'keyless', swarmKeyFile: writeSwarmKey(dir) })
  const old = d.peerId
  await stopped(d)
  const state = join(d.dir, 'state')
  rmSync(join(state, 'identity.key'))
  const r = await startRefused(d)
  t.equal(r.code, 2, r.stderr)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.match(r.stderr, `meshd: could not start: ${join(state, 'identity.key')} is missing but ${join(state, 'meshd.db')} holds the state of peer ${old}`)
  t.notOk(existsSync(join(state, 'identity.key')), 'no key was made by the refused start')

  await d.restart(['--reset-state'])
  t.not(d.peerId, old, 'a new peer id')
  t.ok(readdirSync(state).some((f) => /^meshd\.db\.reset-\d{8}T\d{6}\d*Z$/.test(f)), `the old database kept aside: ${readdirSync(state).join(' ')}`)
  await stopped(d)
  await d.restart()
  t.equal(d.peerId, d.process.info!.peer, 'and it restarts without the flag')
})

t.test('a damaged meshd.db is named and refused; --reset-state moves it aside', async (t) => {
  const dir = tempDir(t)
  const d = await DaemonProcess.start(t, dir, { name: 'damaged', swarmKeyFile: writeSwarmKey(dir) })
  const id = d.peerId
  await stopped(d)
  const db = join(d.dir, 'state', 'meshd.db')
  writeFileSync(db, Buffer.alloc(16_384, 0x41))
  const r = await startRefused(d)
  t.equal(r.code, 2, r.stderr)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.match(r.stderr, `meshd: could not start: ${db} is damaged (SQLITE_NOTADB: file is not a database)`)
  await d.restart(['--reset-state'])
  t.equal(d.peerId, id, 'the same peer id')
  t.ok(readdirSync(join(d.dir, 'state')).some((f) => f.startsWith('meshd.db.reset-')), 'the damaged file kept aside')
})

t.test('meshd init makes the key and the database together: the first start is not taken for lost state', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'meshd.yaml')
  const state = join(dir, 'state')
  const init = await meshd(['init', '--config', file, '--state-dir', state, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0'], { timeoutMs: 20_000 })
  t.equal(init.code, 0, init.stderr)
  t.ok(existsSync(join(state, 'meshd.db')), 'init made the database')
  const d = await DaemonProcess.start(t, join(dir, 'c'), { name: 'inited', swarmKeyFile: writeSwarmKey(dir), config: { state_dir: state } })
  t.ok(d.running)
  t.match(init.stdout, `peer id ${d.peerId}`, 'under the identity init made')
})
