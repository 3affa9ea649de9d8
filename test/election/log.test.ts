/**
 * The log's bookkeeping for the shell: what Ready must truncate and append
 * after appends and conflicts, and the config as of the latest entry.
 */
import t from 'tap'
import { LogError, RaftLog } from '../../mesh/election/raft/log.ts'
import type { Entry } from '../../mesh/election/raft/types.ts'

const cmd = (index: number, term: number, data: unknown = index): Entry => ({ index, term, kind: 'command', data })
const cfg = (index: number, term: number, voters: string[]): Entry => ({ index, term, kind: 'config', data: { voters } })

t.test('a persisted log has nothing unstable; appends are handed out once', async (t) => {
  const log = new RaftLog([cfg(1, 1, ['a']), cmd(2, 1)])
  t.equal(log.hasUnstable(), false)
  t.same(log.drainUnstable(), { append: [] })
  log.append(cmd(3, 2))
  log.append(cmd(4, 2))
  t.equal(log.hasUnstable(), true)
  t.same(log.drainUnstable(), { append: [cmd(3, 2), cmd(4, 2)] })
  t.same(log.drainUnstable(), { append: [] })
})

t.test('a conflict over persisted entries asks the shell to truncate', async (t) => {
  const log = new RaftLog([cfg(1, 1, ['a']), cmd(2, 1), cmd(3, 1), cmd(4, 1)])
  t.equal(log.merge([cmd(2, 1), cmd(3, 2, 'x')]), 3, 'skips the matching entry, truncates at the first conflict')
  t.same(log.drainUnstable(), { truncateFrom: 3, append: [cmd(3, 2, 'x')] })
  t.equal(log.lastIndex(), 3)
})

t.test('a conflict over entries not yet persisted needs no truncation of the disk', async (t) => {
  const log = new RaftLog([cfg(1, 1, ['a'])])
  log.append(cmd(2, 1))
  log.append(cmd(3, 1))
  log.merge([cmd(3, 2)])
  t.same(log.drainUnstable(), { append: [cmd(2, 1), cmd(3, 2)] })
})

t.test('two conflicts before a drain truncate from the lower one', async (t) => {
  const log = new RaftLog([cfg(1, 1, ['a']), cmd(2, 1), cmd(3, 1), cmd(4, 1)])
  log.merge([cmd(4, 2)])
  log.merge([cmd(2, 3)])
  t.same(log.drainUnstable(), { truncateFrom: 2, append: [cmd(2, 3)] })
})

t.test('merge of entries we already have changes nothing', async (t) => {
  const log = new RaftLog([cfg(1, 1, ['a']), cmd(2, 1)])
  t.equal(log.merge([cfg(1, 1, ['a']), cmd(2, 1)]), undefined)
  t.equal(log.hasUnstable(), false)
})

t.test('config is the latest config entry, and a truncation rolls it back', async (t) => {
  const log = new RaftLog([cfg(1, 1, ['a', 'b', 'c']), cmd(2, 1)])
  t.same(log.config(), { index: 1, voters: ['a', 'b', 'c'] })
  t.equal(log.previousConfig(), null)
  log.append(cfg(3, 2, ['a', 'b', 'c', 'd']))
  t.same(log.config(), { index: 3, voters: ['a', 'b', 'c', 'd'] }, 'in effect as soon as appended')
  t.same(log.previousConfig(), { index: 1, voters: ['a', 'b', 'c'] })
  log.merge([cmd(3, 3)])
  t.same(log.config(), { index: 1, voters: ['a', 'b', 'c'] })
  t.equal(new RaftLog([]).config(), null)
})

t.test('terms, slices, up-to-date order and term searches', async (t) => {
  const log = new RaftLog([cfg(1, 1, ['a']), cmd(2, 1), cmd(3, 2), cmd(4, 2), cmd(5, 4)])
  t.equal(log.term(0), 0)
  t.equal(log.term(4), 2)
  t.equal(log.term(6), undefined)
  t.same(log.slice(2, 3).map(e => e.index), [2, 3])
  t.same(log.slice(4, 99, 1).map(e => e.index), [4])
  t.same(log.slice(6, 9), [])
  t.ok(log.isUpToDate(5, 4))
  t.ok(log.isUpToDate(1, 5), 'a higher last term wins over length')
  t.notOk(log.isUpToDate(9, 3))
  t.notOk(log.isUpToDate(4, 4))
  t.equal(log.firstIndexOfTermAt(4), 3)
  t.equal(log.firstIndexOfTermAt(2), 1)
  t.equal(log.lastIndexOfTerm(2, 5), 4)
  t.equal(log.lastIndexOfTerm(2, 3), 3)
  t.equal(log.lastIndexOfTerm(3, 5), 0, 'a term we never had')
})

t.test('rejects a corrupt persisted log and out-of-order appends', async (t) => {
  t.throws(() => new RaftLog([cmd(2, 1)]), LogError)
  t.throws(() => new RaftLog([cmd(1, 2), cmd(2, 1)]), LogError)
  t.throws(() => new RaftLog([cmd(1, 0)]), LogError)
  const log = new RaftLog([cmd(1, 2)])
  t.throws(() => log.append(cmd(3, 2)), LogError)
  t.throws(() => log.append(cmd(2, 1)), LogError)
})
