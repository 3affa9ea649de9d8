/** One coarse timer for all request deadlines: each fires once, after its time; a cleared one never does. */
import t from 'tap'
import { Deadlines } from '../../mesh/infer/deadlines.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

t.test('deadlines fire once, no earlier than due; cleared ones never; the timer stops when none is left', async (t) => {
  const d = new Deadlines(10)
  const fired: Array<{ name: string, late: number }> = []
  const start = Date.now()
  d.add(start + 30, () => { fired.push({ name: 'a', late: Date.now() - (start + 30) }) })
  const b = d.add(start + 40, () => { fired.push({ name: 'b', late: 0 }) })
  d.add(start + 60, () => { fired.push({ name: 'c', late: Date.now() - (start + 60) }) })
  d.clear(b)
  await waitFor(() => fired.length === 2 && d.size === 0, { timeoutMs: 2000, intervalMs: 5, what: 'both deadlines to fire' })
  t.same(fired.map((f) => f.name), ['a', 'c'], 'a then c; b was cleared')
  t.ok(fired.every((f) => f.late >= 0), 'never before its time')
})
