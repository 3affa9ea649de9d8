/**
 * The election store: what a Ready batch persists is there after the process
 * is gone (a fresh connection reads it back), and every commit is fsynced
 * (synchronous=FULL), because a vote or an acknowledged entry is a promise to
 * other nodes that a power loss must not undo.
 */
import t from 'tap'
import { openDb } from '../../daemon/store/db.ts'
import { ElectionStore } from '../../mesh/election/storage.ts'
import { tempDir } from '../helpers/tmp.ts'

t.test('a persisted vote, log and group come back on a new connection; commits are fsynced', async (t) => {
  const dir = tempDir(t)
  const db = openDb(dir)
  t.equal(db.pragma('synchronous', { simple: true }), 1, 'the shared connection opens with NORMAL')
  const store = new ElectionStore(db)
  t.equal(db.pragma('synchronous', { simple: true }), 2, 'the election store switches it to FULL')
  store.persist({ term: 3, votedFor: 'b' }, undefined, [
    { index: 1, term: 1, kind: 'noop', data: null },
    { index: 2, term: 3, kind: 'command', data: { op: 'x' } }
  ], 'g1')
  store.persist(undefined, 2, [{ index: 2, term: 3, kind: 'command', data: { op: 'y' } }])
  db.close()

  const db2 = openDb(dir)
  t.teardown(() => { db2.close() })
  const again = new ElectionStore(db2)
  t.same(again.hardState(), { term: 3, votedFor: 'b' })
  t.equal(again.group(), 'g1')
  t.same(again.log().map((e) => [e.index, e.term, e.data]), [[1, 1, null], [2, 3, { op: 'y' }]], 'the truncated entry was replaced')
  again.reset()
  t.same([again.hardState(), again.group(), again.log()], [{ term: 0, votedFor: null }, null, []], 'reset forgets everything')
})
