/**
 * What `meshd start` makes of the state dir it finds (daemon/startup/):
 * the verdict as a table, and the facts read from real SQLite files (an
 * empty one, a damaged one, a whole one of a voter).
 */
import t from 'tap'
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { judgeState, type DbFacts } from '../../daemon/startup/state-verdict.ts'
import { inspectDb } from '../../daemon/startup/state.ts'
import { openDb } from '../../daemon/store/db.ts'
import { NodeState } from '../../daemon/store/node-state.ts'
import { ElectionStore } from '../../mesh/election/storage.ts'
import { tempDir } from '../helpers/tmp.ts'

const paths = { dbPath: '/s/meshd.db', identityPath: '/s/identity.key' }
const whole = (peerId: string | null, election = false): DbFacts => ({ kind: 'whole', peerId, election })

t.test('the verdict: open, refuse, or (with --reset-state) reset', async (t) => {
  const table: Array<[string, string | null, DbFacts, string, RegExp?]> = [
    ['first start: neither file', null, { kind: 'missing' }, 'open'],
    ['first start that died before the key: an empty database', null, { kind: 'empty' }, 'open'],
    ['a first start that died between database and key', null, whole(null), 'open'],
    ['a whole node', 'P1', whole('P1', true), 'open'],
    ['a database from before peer ids were recorded', 'P1', whole(null, true), 'open'],
    ['the database deleted', 'P1', { kind: 'missing' }, 'refuse', /^\/s\/meshd\.db is missing but \/s\/identity\.key exists \(peer id P1\): this node's state was lost.*Restore \/s\/meshd\.db from a backup, or run `meshd start --reset-state`/],
    ['the database emptied', 'P1', { kind: 'empty' }, 'refuse', /^\/s\/meshd\.db is empty but \/s\/identity\.key exists/],
    ['the key deleted, a voter\'s database kept', null, whole('P1', true), 'refuse', /^\/s\/identity\.key is missing but \/s\/meshd\.db holds the state of peer P1: .*new peer id.*Restore \/s\/identity\.key/],
    ['the key deleted, an old voter\'s database without a peer id', null, whole(null, true), 'refuse', /holds the state of a voter/],
    ['a key of another node', 'P2', whole('P1'), 'refuse', /^\/s\/identity\.key \(peer id P2\) is not the identity \/s\/meshd\.db belongs to \(peer id P1\)/],
    ['a damaged database', 'P1', { kind: 'corrupt', detail: 'PRAGMA quick_check: page 3 is never used' }, 'refuse', /^\/s\/meshd\.db is damaged \(PRAGMA quick_check: page 3 is never used\).*--reset-state` to move it aside/]
  ]
  for (const [what, identity, db, action, message] of table) {
    const v = judgeState({ ...paths, identity, db }, false)
    t.equal(v.action, action, what)
    if (message !== undefined && v.action === 'refuse') {
      t.match(v.message, message, what)
      t.notMatch(v.message, /\n/, `${what}: one line`)
    }
    const reset = judgeState({ ...paths, identity, db }, true)
    t.equal(reset.action, action === 'refuse' ? 'reset' : 'open', `${what}, with --reset-state`)
    if (reset.action === 'reset') t.match(reset.warning, /--reset-state given: /)
  }
})

t.test('the facts, from real files', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'meshd.db')
  t.same(inspectDb(path), { kind: 'missing' })
  writeFileSync(path, '')
  t.same(inspectDb(path), { kind: 'empty' }, 'a 0-byte file')

  const db = openDb(dir)
  t.same(inspectDb(path), { kind: 'whole', peerId: null, election: false }, 'migrated, nothing else')
  new NodeState(db).set('peer_id', 'P1')
  new ElectionStore(db).persist({ term: 3, votedFor: 'P1' }, undefined, [])
  db.close()
  t.same(inspectDb(path), { kind: 'whole', peerId: 'P1', election: true }, 'a voter\'s')

  // A damaged page deep in the file (the header intact): quick_check finds it.
  const big = openDb(dir)
  const ins = big.prepare('INSERT INTO peers (id, addrs, source) VALUES (?, ?, ?)')
  big.transaction(() => { for (let i = 0; i < 2000; i++) ins.run(`peer-${i}`, JSON.stringify([`/ip4/10.0.0.1/tcp/${i}`]), 'gossip') })()
  big.close()
  const fd = openSync(path, 'r+')
  writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096 * 3)
  closeSync(fd)
  const damaged = inspectDb(path)
  t.equal(damaged.kind, 'corrupt', JSON.stringify(damaged))

  // A header that is not SQLite's.
  writeFileSync(path, Buffer.alloc(8192, 0x41))
  const notDb = inspectDb(path)
  t.equal(notDb.kind, 'corrupt')
  t.match(notDb, { detail: /SQLITE_NOTADB/ })
})
