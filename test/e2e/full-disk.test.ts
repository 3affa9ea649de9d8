/**
 * A full state disk, for real (issue 12 item 4): one member's state_dir on a
 * small tmpfs that the test mounts and fills. Before, the peer-cache write
 * every 15 s threw SQLITE_FULL uncaught: the daemon died with a raw stack and
 * no `fatal` line (and restart-looped under systemd). Now a non-essential
 * write is logged and the node keeps routing, with `/health` saying
 * `disk: full`; an essential one (the election's hard state) stops it with
 * one fatal line and exit 4. Needs root (mount); skipped otherwise.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { tempDir, type Teardown } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { startJoined, writeSwarmKey, type DaemonProcess } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { agreedLeader, aliveOn, statuses } from '../../daemon/localmesh/cluster.ts'

const root = process.getuid?.() === 0
const replica = { models: ['m'], slots: 2, command: 'sim', readiness_probe: { initial_delay_seconds: 60, period_seconds: 1 }, sim: { ttft_ms: 5, tokens_per_second: 500, max_tokens: 8 } }

/** A tmpfs of `size` mounted on a fresh directory; unmounted and removed at teardown, after `before` (killing what uses it). */
function smallDisk (t: Teardown, size: string, before: () => Promise<void>): string {
  const mnt = mkdtempSync(join(tmpdir(), 'meshd-disk-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', mnt])
  t.teardown(async () => {
    await before()
    try { execFileSync('umount', [mnt]) } catch { execFileSync('umount', ['-l', mnt]) }
    rmSync(mnt, { recursive: true, force: true })
  })
  return mnt
}

/** Writes a file until the file system says ENOSPC; its size. */
function fill (dir: string): number {
  const fd = openSync(join(dir, 'filler'), 'w')
  let written = 0
  try {
    for (const chunk of [1 << 16, 4096, 512]) {
      const buf = Buffer.alloc(chunk, 0x42)
      for (;;) {
        try { written += writeSync(fd, buf) } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
          break
        }
      }
    }
  } finally { closeSync(fd) }
  return written
}

t.test('a full state disk: non-essential writes are logged and the node routes on; an essential one exits 4 with one fatal line', { skip: root ? false : 'needs root: mounts a small tmpfs as the state disk' }, async (t) => {
  const dir = tempDir(t)
  let nodes: DaemonProcess[] = []
  const mnt = smallDisk(t, '4m', async () => { for (const n of nodes) n.destroy(); await Promise.all(nodes.map(async (n) => n.exited())) })
  mkdirSync(join(mnt, 'state'), { mode: 0o750 })
  const swarmKeyFile = writeSwarmKey(dir)
  // b's state is on the small disk; c serves the model.
  nodes = await startJoined(t, dir, [
    { name: 'a', swarmKeyFile },
    { name: 'b', swarmKeyFile, config: { state_dir: join(mnt, 'state') } },
    { name: 'c', swarmKeyFile, config: { replica } }
  ], 'chain')
  const [a, b, c] = nodes as [DaemonProcess, DaemonProcess, DaemonProcess]
  await waitFor(async () => agreedLeader(await statuses(nodes), 3) !== null, { timeoutMs: 15_000, what: 'one leader of three voters' })
  await waitFor(async () => (await b.status()).members.some((m) => m.id === c.peerId && m.replica?.ready === true), { timeoutMs: 20_000, what: 'c\'s replica ready, as b sees it' })

  const filled = fill(mnt)
  t.ok(filled > 0, `filled the state disk (${filled} bytes more)`)

  // A join address: b joins (the peer is reached), says it could not remember it, exits 0.
  const j = await meshd(['join', '--config', b.configPath, c.joinAddr], { timeoutMs: 30_000 })
  t.equal(j.code, 0, j.stderr)
  t.match(j.stderr, /meshd: warning: joined, but these addresses are not remembered across restarts: the join addresses: SQLITE_FULL/)
  // The peer cache, every 15 s.
  await waitFor(async () => b.logs.some((l) => l.level === 'error' && /^could not write the peer cache to .*meshd\.db \(SQLITE_FULL/.test(l.msg)), { timeoutMs: 25_000, what: 'b to fail a peer-cache write' })
    .catch((err: Error) => { throw new Error(`${err.message}; b's errors: ${JSON.stringify(b.logs.filter((l) => l.level === 'error' || l.level === 'warn' || l.svc === 'store'))}`) })
  t.ok(b.running, 'b is still running')
  t.notOk(b.logs.some((l) => l.level === 'fatal'), 'no fatal line')

  const res = await fetch(`${b.url}/health`)
  const health = await res.json() as Record<string, unknown>
  t.equal(res.status, 200, 'it can route: 200')
  t.match(health, { status: 'ok', disk: 'full', disk_error: /SQLITE_FULL/ })

  const client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 30_000 })
  const answer = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })
  t.ok(answer.choices[0]?.message.content !== undefined, 'a request through b is served')
  t.ok(await aliveOn([a, c], [b.peerId]), 'b is alive to the others')

  // a dies. Whoever led, b must now write to its election log: a new term if
  // a led, else the removal of a (a config entry), asked for through b.
  a.kill('SIGKILL')
  await a.exited()
  const removal = meshd(['voters', 'remove', a.peerId, '--config', b.configPath], { timeoutMs: 60_000 }).catch(() => null)
  await waitFor(async () => !b.running, { timeoutMs: 30_000, what: 'b to stop after its election write failed' })
  const exit = await b.exited()
  await removal
  t.equal(exit.code, 4, `b exits 4 (${JSON.stringify(exit)})`)
  const fatal = b.logs.filter((l) => l.level === 'fatal')
  t.equal(fatal.length, 1, 'one fatal line')
  t.match(fatal[0]?.msg, /^state disk full: could not write the election's hard state and log to .*\/state\/meshd\.db \(SQLITE_FULL: database or disk is full\); stopping \(exit 4\)/)
  t.notMatch(b.process.stderr, /\n\s+at /, 'no stack on stderr')
  t.ok(c.running, 'c runs on')

  // A node that cannot even set up its database on the full disk: exit 4, one line.
  const fresh = join(dir, 'fresh.json')
  writeFileSync(fresh, JSON.stringify({ ...JSON.parse(readFileSync(b.configPath, 'utf8')) as object, state_dir: join(mnt, 'fresh'), admin: { socket: join(dir, 'fresh.sock') } }))
  const r = await meshd(['start', '--config', fresh], { timeoutMs: 20_000 })
  t.equal(r.code, 4, r.stderr)
  t.equal(r.stderr, `meshd: could not start: state disk full (state_dir ${join(mnt, 'fresh')}): SQLITE_FULL: database or disk is full\n`)
})
