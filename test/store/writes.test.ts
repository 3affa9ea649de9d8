/**
 * How the daemon takes a failed write to its state database
 * (daemon/store/writes.ts), on a fake clock: a non-essential one is logged
 * (throttled) and the node goes on, with the condition for /health; an
 * essential one logs one fatal line and exits 4. The real full disk is in
 * test/e2e/full-disk.test.ts.
 */
import t from 'tap'
import { diskProblem, LogThrottle, StateWrites, EXIT_STATE_WRITE, MIN_FREE_BYTES } from '../../daemon/store/writes.ts'

const sqliteError = (code: string, message: string): Error => Object.assign(new Error(message), { code })
const FULL = sqliteError('SQLITE_FULL', 'database or disk is full')

function harness (): { writes: StateWrites, lines: Array<{ level: string, o: Record<string, unknown>, msg: string }>, exits: number[], clock: { now: number }, disk: { free: number | null } } {
  const lines: Array<{ level: string, o: Record<string, unknown>, msg: string }> = []
  const exits: number[] = []
  const clock = { now: 0 }
  // Plenty of room unless a test says otherwise.
  const disk: { free: number | null } = { free: null }
  const at = (level: string) => (o: object, msg: string): void => { lines.push({ level, o: o as Record<string, unknown>, msg }) }
  const writes = new StateWrites({ path: '/s/meshd.db', now: () => clock.now, free: () => disk.free }, { log: { info: at('info'), error: at('error'), fatal: at('fatal') }, exit: (code) => { exits.push(code) } })
  return { writes, lines, exits, clock, disk }
}

t.test('what a failure is', async (t) => {
  const table: Array<[unknown, string | null]> = [
    [FULL, 'full'],
    [sqliteError('SQLITE_IOERR_WRITE', 'disk I/O error'), 'io_error'],
    [sqliteError('SQLITE_READONLY', 'attempt to write a readonly database'), 'read_only'],
    [Object.assign(new Error('x'), { code: 'ENOSPC' }), 'full'],
    [sqliteError('SQLITE_CONSTRAINT_PRIMARYKEY', 'UNIQUE constraint failed'), null],
    [new Error('no code'), null],
    [null, null],
    ['a string', null]
  ]
  for (const [err, want] of table) t.equal(diskProblem(err), want, String((err as { code?: string } | null)?.code ?? err))
})

t.test('the throttle: the first at once, then one a minute with the count skipped', async (t) => {
  const th = new LogThrottle(60_000)
  t.same(th.hit(0), { suppressed: 0 })
  t.equal(th.hit(15_000), null)
  t.equal(th.hit(30_000), null)
  t.same(th.hit(60_000), { suppressed: 2 })
  t.equal(th.hit(61_000), null)
  th.reset()
  t.same(th.hit(62_000), { suppressed: 0 }, 'after writes worked again, the next failure is logged at once')
})

t.test('non-essential: logged, throttled, the node goes on; /health sees it until a write works', async (t) => {
  const { writes, lines, exits, clock } = harness()
  t.same(writes.condition(), { disk: 'ok' })
  t.equal(writes.nonEssential('the peer cache', () => { throw FULL }), false, 'not thrown')
  t.equal(lines.length, 1)
  t.match(lines[0], { level: 'error', o: { what: 'the peer cache', path: '/s/meshd.db', disk: 'full', suppressed: 0 }, msg: 'could not write the peer cache to /s/meshd.db (SQLITE_FULL: database or disk is full); the node goes on without it: free space on the state disk' })
  t.same(writes.condition(), { disk: 'full', error: 'the peer cache: SQLITE_FULL: database or disk is full', since: 0, at: 0 })
  // Every 15 s for the next minute: one more line, a minute later, counting three.
  for (clock.now = 15_000; clock.now <= 60_000; clock.now += 15_000) writes.nonEssential('the peer cache', () => { throw FULL })
  t.equal(lines.length, 2)
  t.match(lines[1], { o: { suppressed: 3 } })
  clock.now = 70_000
  writes.nonEssential('the join addresses', () => { throw FULL })
  t.equal(lines.length, 3, 'another kind of write is logged at once (its own throttle)')
  t.match(lines[2], { o: { what: 'the join addresses', suppressed: 0 } })
  t.match(writes.condition(), { disk: 'full', error: /^the join addresses: /, since: 0, at: 70_000 })
  clock.now = 75_000
  t.equal(writes.nonEssential('the peer cache', () => {}), true)
  t.same(writes.condition(), { disk: 'ok' }, 'cleared by a write that worked')
  t.match(lines.at(-1), { level: 'info', msg: 'writes to /s/meshd.db work again' })
  t.same(exits, [], 'never exits')
})

t.test('a full disk stays full in /health while some writes still fit (SQLite reuses its WAL)', async (t) => {
  const { writes, disk } = harness()
  disk.free = 4096
  t.same(writes.condition(), { disk: 'full', error: '4096 bytes free on the state disk (/s)' }, 'a nearly full disk is reported before any write fails')
  writes.nonEssential('the peer cache', () => { throw FULL })
  t.equal(writes.nonEssential('the peer cache', () => {}), true, 'a write that fit')
  t.match(writes.condition(), { disk: 'full', error: /^the peer cache: SQLITE_FULL/ }, 'not cleared while the disk has no room')
  disk.free = 10 * MIN_FREE_BYTES
  writes.nonEssential('the peer cache', () => {})
  t.same(writes.condition(), { disk: 'ok' }, 'cleared by a write once there is room')
})

t.test('essential: one fatal line, exit 4, and the error thrown on (nothing after it runs)', async (t) => {
  const { writes, lines, exits } = harness()
  t.throws(() => writes.essentialFailed('the election\'s hard state and log', FULL), FULL)
  t.same(exits, [EXIT_STATE_WRITE])
  t.equal(lines.length, 1)
  t.match(lines[0], {
    level: 'fatal',
    o: { what: 'the election\'s hard state and log', disk: 'full', exit: 4 },
    msg: 'state disk full: could not write the election\'s hard state and log to /s/meshd.db (SQLITE_FULL: database or disk is full); stopping (exit 4): a voter cannot go on without it. Free space on the state disk, then start meshd again'
  })
  t.throws(() => writes.essentialFailed('the election\'s hard state and log', FULL))
  t.equal(lines.length, 1, 'one fatal line, however many writes fail before the process is gone')
  const bug = harness()
  t.throws(() => bug.writes.essentialFailed('the election\'s hard state and log', sqliteError('SQLITE_CONSTRAINT_PRIMARYKEY', 'UNIQUE constraint failed')))
  t.same(bug.exits, [1], 'not the disk: exit 1')
  t.match(bug.lines[0], { level: 'fatal', msg: /^state write failed: .*stopping \(exit 1\).*Please report this$/ })
})
