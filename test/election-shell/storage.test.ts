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

t.test('a forced recovery is written in one transaction; reset forgets what it superseded', async (t) => {
  const dir = tempDir(t)
  const db = openDb(dir)
  const store = new ElectionStore(db)
  store.persist({ term: 4, votedFor: 'a' }, undefined, [{ index: 1, term: 1, kind: 'config', data: { voters: ['a', 'b', 'c'] } }], 'g-old')
  t.same(store.supersedes(), [], 'nothing superseded at first')
  store.recover({ term: 5, votedFor: 'c' }, { index: 2, term: 5, kind: 'config', data: { voters: ['c'] } }, 'g-new', ['g-old'])
  db.close()

  const db2 = openDb(dir)
  t.teardown(() => { db2.close() })
  const again = new ElectionStore(db2)
  t.same(again.hardState(), { term: 5, votedFor: 'c' })
  t.equal(again.group(), 'g-new')
  t.same(again.supersedes(), ['g-old'])
  t.same(again.log().map((e) => [e.index, e.term, e.data]), [[1, 1, { voters: ['a', 'b', 'c'] }], [2, 5, { voters: ['c'] }]])
  again.reset()
  t.same(again.supersedes(), [], 'a node that yields later announces nothing it replaced')
})
