import t from 'tap'
import { EntryQueue } from '../../daemon/proxy/entry-queue.ts'
import { Ring } from '../../daemon/proxy/ring.ts'

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

t.test('waiters are placed in arrival order when capacity frees up', async (t) => {
  const q = new EntryQueue<string>(10)
  let free = 0
  const place = (tag: string) => () => (free > 0 ? (free--, tag) : null)
  const a = q.wait(place('a'), 10_000)!
  const b = q.wait(place('b'), 10_000)!
  const c = q.wait(place('c'), 10_000)!
  t.equal(q.length, 3)
  free = 2
  q.kick()
  t.equal(await a, 'a')
  t.equal(await b, 'b')
  t.equal(q.length, 1, 'c still waits')
  free = 1
  q.kick()
  t.equal(await c, 'c')
  t.equal(q.length, 0)
})

t.test('full queue, deadline and abort', async (t) => {
  const q = new EntryQueue<string>(1)
  const never = (): string | null => null
  const first = q.wait(never, 30)!
  t.equal(q.wait(never, 1000), null, 'a full queue refuses at once')
  t.equal(await first, null, 'the deadline resolves null')
  t.equal(q.length, 0)
  const ac = new AbortController()
  const second = q.wait(never, 10_000, ac.signal)!
  ac.abort()
  t.equal(await second, null, 'a client that goes away leaves the queue')
  t.equal(q.length, 0)
  q.kick()
  const third = q.wait(never, 10_000)!
  q.clear()
  t.equal(await third, null, 'clear() releases everyone (shutdown)')
})
