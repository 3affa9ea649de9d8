/**
 * The node's reading of EC2 notices (daemon/burst-node/notices.ts), pure:
 * parsing, each notice once, an interruption over a rebalance, IMDS going
 * away reported once, and how long a draining node lets requests run.
 */
import t from 'tap'
import { currentNotice, drainBudgetMs, initialNotices, INTERRUPTION_MARGIN_MS, observe, parseInstanceAction, parseRebalance, type NoticeState, type Reading } from '../../daemon/burst-node/notices.ts'

const none: Reading = { status: 'none' }
const body = (b: unknown): Reading => ({ status: 'body', body: typeof b === 'string' ? b : JSON.stringify(b) })
const down: Reading = { status: 'error', error: 'connect ECONNREFUSED' }
const T = Date.parse('2026-11-26T21:00:00Z')

t.test('parsing what IMDS answers', async (t) => {
  t.same(parseInstanceAction('{"action":"terminate","time":"2026-11-26T21:00:00Z"}'), { ok: true, value: { action: 'terminate', at: T } })
  t.same(parseInstanceAction('{"action":"stop","time":"2026-11-26T21:00:00Z"}'), { ok: true, value: { action: 'stop', at: T } })
  t.match(parseInstanceAction('<html>'), { ok: false, error: /spot\/instance-action: expected a JSON object/ })
  t.match(parseInstanceAction('{"action":"terminate","time":"soon"}'), { ok: false, error: /time: expected an ISO 8601 time, got "soon"/ })
  t.same(parseRebalance('{"noticeTime":"2026-11-26T21:00:00Z"}'), { ok: true, value: { at: T } })
  t.match(parseRebalance('{"when":1}'), { ok: false, error: /noticeTime: expected an ISO 8601 time/ })
})

t.test('each notice is new once; an interruption outranks a rebalance; a notice stays', async (t) => {
  let s: NoticeState = initialNotices()
  const step = (action: Reading, rebalance: Reading): string[] => {
    const r = observe(s, { action, rebalance })
    s = r.state
    return r.events.map((e) => e.type)
  }
  t.same(step(none, none), [])
  t.equal(currentNotice(s), null)
  t.same(step(none, body({ noticeTime: '2026-11-26T20:58:00Z' })), ['rebalance'])
  t.same(currentNotice(s), { kind: 'rebalance', at: T - 120_000 })
  t.same(step(none, body({ noticeTime: '2026-11-26T20:58:00Z' })), [], 'seen again: nothing new')
  t.same(step(body({ action: 'terminate', time: '2026-11-26T21:00:00Z' }), body({ noticeTime: '2026-11-26T20:58:00Z' })), ['interruption'])
  t.same(currentNotice(s), { kind: 'interruption', at: T }, 'the interruption is what the heartbeat carries')
  t.same(step(body({ action: 'terminate', time: '2026-11-26T21:00:00Z' }), none), [], 'the same interruption again: nothing new')
  t.same(step(body({ action: 'terminate', time: '2026-11-26T21:00:30Z' }), none), ['interruption'], 'a moved termination time is news')
  t.same(step(none, none), [], 'a notice that disappears is kept: the node has begun draining')
  t.same(currentNotice(s), { kind: 'interruption', at: T + 30_000 })
})

t.test('IMDS down is reported once, and its return once; notices still come through', async (t) => {
  let s: NoticeState = initialNotices()
  const step = (action: Reading, rebalance: Reading): string[] => {
    const r = observe(s, { action, rebalance })
    s = r.state
    return r.events.map((e) => e.type)
  }
  t.same(step(down, down), ['unreachable'])
  t.same(step(down, down), [], 'still down: not again')
  t.same(step(body('garbage'), none), [], 'a malformed answer counts as failing, still not reported again')
  t.same(step(none, none), ['reachable'])
  t.same(step(body({ action: 'terminate', time: '2026-11-26T21:00:00Z' }), down), ['interruption', 'unreachable'])
  t.same(currentNotice(s), { kind: 'interruption', at: T })
})

t.test('a draining node lets requests run until the notice, not drain_timeout', async (t) => {
  const now = T - 120_000
  t.equal(drainBudgetMs(now, 150_000, null), 150_000, 'no notice: drain_timeout')
  t.equal(drainBudgetMs(now, 30_000, T), 120_000 - INTERRUPTION_MARGIN_MS, 'the notice allows longer than drain_timeout: longer')
  t.equal(drainBudgetMs(now, 600_000, T), 120_000 - INTERRUPTION_MARGIN_MS, 'the notice allows less: never past it')
  t.equal(drainBudgetMs(T, 600_000, T), 0, 'past the notice: stop now')
})
