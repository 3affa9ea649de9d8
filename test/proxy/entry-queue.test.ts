import t from 'tap'
import { EntryQueue } from '../../daemon/proxy/entry-queue.ts'
import { Ring } from '../../mesh/infer/ring.ts'

t.test('ring buffer keeps FIFO order across growth', async (t) => {
  const r = new Ring<number>(2)
  const out: number[] = []
  for (let i = 0; i < 5; i++) r.push(i)
  out.push(r.shift()!, r.shift()!)
  for (let i = 5; i < 12; i++) r.push(i)
  while (r.length > 0) out.push(r.shift()!)
  t.same(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
  t.equal(r.shift(), undefined)
})

t.test('offers place waiters of their model in arrival order, skipping those that excluded the member', async (t) => {
  const q = new EntryQueue<string>(10)
  const a = q.wait('m', 10_000)!
  const b = q.wait('m', 10_000, undefined, new Set(['X']))!
  const c = q.wait('m', 10_000)!
  const other = q.wait('n', 10_000)!
  t.equal(q.length, 4)
  t.equal(q.waiting('m'), 3)
  t.ok(q.take('m', 'X', () => 'X1'), 'the oldest takes the first offer')
  t.equal(await a, 'X1')
  t.ok(q.take('m', 'X', () => 'X2'), 'b excluded X: c takes it')
  t.equal(await c, 'X2')
  t.notOk(q.take('m', 'X', () => 'X3'), 'nobody left who may go to X')
  t.ok(q.take('m', 'Y', () => 'Y1'))
  t.equal(await b, 'Y1')
  t.notOk(q.take('m', 'Y', () => 'Y2'), 'no waiter left for m')
  t.notOk(q.take('n', 'Y', () => null), 'a placement that fails places nobody')
  t.equal(q.waiting('n'), 1)
  q.clear()
  t.equal(await other, null)
})

t.test('heads report how many wait and how long the oldest have; every change is reported', async (t) => {
  let now = 1000
  const changes: string[] = []
  const q = new EntryQueue<string>(10, (m) => { changes.push(m) }, () => now)
  const first = q.wait('m', 10_000)!
  now += 300
  const second = q.wait('m', 10_000)!
  now += 100
  const h = q.heads('m', 16)
  t.equal(h.waiting, 2)
  t.same(h.headsMs, [400, 100])
  t.same(q.heads('m', 1).headsMs, [400], 'at most max heads')
  q.take('m', 'X', () => 'x')
  await first
  const h2 = q.heads('m', 16)
  t.same(h2.headsMs, [100])
  t.not(h2.oldest, h.oldest, 'a new oldest waiter has a new identity')
  q.clear()
  await second
  t.same(changes, ['m', 'm', 'm', 'm'], 'two arrivals, a take and a clear')
  t.same(q.models(), [])
})

t.test('full queue, deadline and abort', async (t) => {
  const q = new EntryQueue<string>(1)
  const first = q.wait('m', 30)!
  t.equal(q.wait('m', 1000), null, 'a full queue refuses at once')
  t.equal(await first, null, 'the deadline resolves null')
  t.equal(q.length, 0)
  const ac = new AbortController()
  const second = q.wait('m', 10_000, ac.signal)!
  ac.abort()
  t.equal(await second, null, 'a client that goes away leaves the queue')
  t.equal(q.length, 0)
  t.notOk(q.take('m', 'X', () => 'x'), 'nobody waits')
  const third = q.wait('m', 10_000)!
  q.clear()
  t.equal(await third, null, 'clear() releases everyone (shutdown)')
})
