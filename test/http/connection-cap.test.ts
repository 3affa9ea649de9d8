/**
 * The connection cap's accounting (daemon/http/connection-cap.ts), with a
 * fake clock: up to the cap connections are served, then refused (answered
 * 503), then dropped unread; closes free places; refusals are logged at most
 * once per 10 s with the count since the last line.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { ConnectionCap } from '../../daemon/http/connection-cap.ts'

t.test('serve, refuse, drop; closes free places; logs are rate-limited', async (t) => {
  let now = 0
  const logs: Array<{ o: Record<string, unknown>, msg: string }> = []
  const cap = new ConnectionCap(3, { log: { warn: (o, msg) => { logs.push({ o: o as Record<string, unknown>, msg }) } }, now: () => now })
  const socket = (): Socket => new EventEmitter() as unknown as Socket
  const s = Array.from({ length: 3 + 64 + 2 }, socket)
  const got = s.map((x) => cap.admit(x))
  t.same(got.slice(0, 3), ['serve', 'serve', 'serve'])
  t.ok(got.slice(3, 67).every((a) => a === 'refuse'), '64 past the cap are answered')
  t.same(got.slice(67), ['drop', 'drop'], 'beyond those: dropped')
  t.ok(cap.refuses(s[3]!) && !cap.refuses(s[0]!))
  t.match(cap.problem(), /at the connection cap: 69 client connections open, http.max_connections is 3/)
  t.equal(logs.length, 1, 'one log line for 66 refusals within 10 s')
  for (const x of s) (x as unknown as EventEmitter).emit('close')
  t.equal(cap.connections, 0)
  t.equal(cap.problem(), null)
  now = 5_000
  for (let i = 0; i < 4; i++) cap.admit(socket())
  t.equal(logs.length, 1, 'still within 10 s: no new line')
  now = 10_001
  cap.admit(socket())
  t.equal(logs.length, 2)
  t.equal(logs[1]!.o.refused, 67, 'the line counts the refusals since the last one (65 + 1 + 1)')
})
