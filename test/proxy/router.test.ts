/**
 * The Router with stub transports and a stub membership (no sockets): the
 * choice of member, waiting behind earlier requests, placement by slot
 * offers (remote and local), wants sent only to members serving the model
 * and withdrawn when nobody waits, and a full member's refusal updating the
 * estimate.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { Router, type InferTransport, type SlotsTransport, type RouterComponents } from '../../daemon/proxy/router.ts'
import { SlotBroker } from '../../daemon/proxy/slot-broker.ts'
import { ReplicaUpstream } from '../../daemon/proxy/replica-upstream.ts'
import { MEMBER_BUSY, UpstreamError, type UpstreamRequest, type UpstreamResponse } from '../../mesh/infer/upstream.ts'
import type { Member } from '../../mesh/membership/table.ts'
import type { WantUpdate } from '../../mesh/slots/client.ts'
import type { Teardown } from '../helpers/tmp.ts'

const SELF = 'self'

function member (id: string, models: string[], inflight = 0, slots = 4): Member {
  return {
    id,
    connected: true,
    state: 'alive',
    stateSince: 0,
    firstSeen: 0,
    leftIncarnation: -1,
    liveness: {} as Member['liveness'],
    heartbeat: {
      v: 1, cluster: 'c', id, name: id, incarnation: 1, seq: 1, sent_at: 1, version: 'x', state: 'alive', voter: false,
      provider: 'static', region: 'r', spot: false, cost_per_hour: 0, addrs: [], http: null, load: { cpu: 0, mem: 0 },
      replica: { ready: true, draining: false, models, slots, inflight, queued: 0, qps: 0 }, instance: null
    } as unknown as Member['heartbeat']
  }
}

class Membership extends EventEmitter {
  list: Member[] = []
  members (): Member[] { return this.list }
}

interface Fixture {
  router: Router
  membership: Membership
  wants: Array<{ member: string } & WantUpdate>
  declines: Array<{ member: string, id: string }>
  sent: Array<{ peer: string, req: UpstreamRequest }>
  broker: SlotBroker | null
  /** What the next remote request answers. */
  answer: { fn: (peer: string) => Promise<UpstreamResponse> }
}

function response (peer: string): UpstreamResponse {
  return { status: 200, headers: [], servedBy: peer, body: (async function * () {})(), abort: () => {} }
}

function fixture (t: Teardown, opts: { localSlots?: number, members?: Member[] } = {}): Fixture {
  const membership = new Membership()
  membership.list = opts.members ?? []
  const wants: Fixture['wants'] = []
  const declines: Fixture['declines'] = []
  const sent: Fixture['sent'] = []
  const answer: Fixture['answer'] = { fn: async (peer) => response(peer) }
  const infer: InferTransport = {
    request: async (peer, req) => { sent.push({ peer, req }); return answer.fn(peer) },
    close: () => {}
  }
  const slots: SlotsTransport = {
    want: (m, w) => { wants.push({ member: m, ...w }) },
    decline: (m, id) => { declines.push({ member: m, id }) },
    forget: () => {},
    close: () => {}
  }
  let broker: SlotBroker | null = null
  let local: { replica: ReplicaUpstream, broker: SlotBroker } | null = null
  let router: Router | null = null
  if (opts.localSlots !== undefined) {
    broker = new SlotBroker({ slots: opts.localSlots, models: ['m'] }, (o) => { router?.localOffer(o.id, o.model, o.seq) })
    broker.setOpen(true, Date.now())
    local = { broker, replica: new ReplicaUpstream({ selfId: SELF, url: () => null }, { broker }) }
  }
  router = new Router({ selfId: SELF, policy: 'least_load', maxQueue: 16, random: () => 0 }, {
    membership: membership as unknown as RouterComponents['membership'], infer, slots, local, localServes: () => local !== null, localModels: () => (local !== null ? ['m'] : [])
  })
  t.teardown(() => { router?.stop() })
  // Their heartbeats, as the membership service would deliver them.
  for (const m of membership.list) membership.emit('member:update', m)
  return { router, membership, wants, declines, sent, broker, answer }
}

const req = (): UpstreamRequest => ({ id: 'r', method: 'POST', path: '/v1/chat/completions', headers: [], body: new Uint8Array(0), model: 'm', deadline: Date.now() + 10_000 })
const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('chooses the less loaded member; a tie goes to the local replica, admitted at once', async (t) => {
  const f = fixture(t, { localSlots: 2, members: [member('A', ['m'], 3), member('B', ['m'], 1)] })
  const c = f.router.choose('m')
  t.equal(c?.id, SELF, 'local has 0 of 2 busy: least loaded')
  t.equal(f.broker!.busy, 1, 'admitted by the local broker when chosen')
  const d = f.router.choose('m')
  t.equal(d?.id, SELF, 'local at 1/2 beats A at 3/4 (the pair sampled)')
  const e = f.router.choose('m')
  t.ok(e !== null && e.id !== SELF && !e.local, 'local full: a remote member')
})

t.test('a newcomer does not overtake requests already waiting here', async (t) => {
  const f = fixture(t, { members: [member('A', ['m'], 4)] })
  const ac = new AbortController()
  const waiting = f.router.wait('m', 10_000, ac.signal)
  f.membership.emit('member:update', member('A', ['m'], 0))
  f.router.loads.report('A', { inflight: 0, queued: 0, slots: 4, at: 2 })
  t.equal(f.router.choose('m'), null, 'A looks free now, but one request waits: the newcomer queues behind it')
  ac.abort()
  t.equal(await waiting, null)
  t.equal(f.router.choose('m')?.id, 'A', 'nobody waits: sent at once')
})

t.test('a waiting request tells every member serving its model, takes an offer, and carries it to the member', async (t) => {
  const f = fixture(t, { members: [member('A', ['m'], 4), member('B', ['m'], 4), member('C', ['other'], 0)] })
  const ac = new AbortController()
  const waiting = f.router.wait('m', 10_000, ac.signal)
  await turn()
  t.same(f.wants.map((w) => [w.member, w.model, w.waiting]).sort(), [['A', 'm', 1], ['B', 'm', 1]], 'A and B hear of the waiter; C does not serve m')
  f.router.offer('B', 'offer-1', 'm', { inflight: 3, queued: 0, slots: 4, at: 5 })
  const route = await waiting
  t.match(route, { id: 'B', local: false, offer: 'offer-1' })
  await f.router.dispatch(route!, req())
  t.equal(f.sent[0]?.req.offer, 'offer-1', 'the request names the offer it takes')
  await turn()
  t.same(f.wants.slice(2).map((w) => [w.member, w.waiting]).sort(), [['A', 0], ['B', 0]], 'nobody waits any more: both hear it')
  f.router.offer('A', 'offer-2', 'm', undefined)
  t.same(f.declines, [{ member: 'A', id: 'offer-2' }], 'an offer with nobody waiting is declined at once')
})

t.test('a slot freed at the local replica goes to the oldest local waiter without any message', async (t) => {
  const f = fixture(t, { localSlots: 1 })
  const first = f.router.choose('m')
  t.equal(first?.local, true)
  const ac = new AbortController()
  const a = f.router.wait('m', 10_000, ac.signal)
  const b = f.router.wait('m', 10_000, ac.signal)
  await turn()
  f.router.release(first!)
  const ra = await a
  t.equal(ra?.local, true, 'the oldest waiter gets the freed slot')
  t.equal(f.broker!.busy, 1, 'and it is admitted')
  t.equal(f.router.queue.length, 1, 'the second still waits')
  t.same(f.wants, [], 'nothing went over the mesh')
  ac.abort()
  t.equal(await b, null)
})

t.test('a full member\'s refusal raises its estimate to full', async (t) => {
  const f = fixture(t, { members: [member('A', ['m'], 0)] })
  f.answer.fn = async () => { throw new UpstreamError(MEMBER_BUSY, 'full', true, { inflight: 4, queued: 0, slots: 4, at: 10 }) }
  const r = f.router.choose('m')!
  const err = await f.router.dispatch(r, req()).then(() => null, (e: unknown) => e)
  t.equal((err as UpstreamError).code, MEMBER_BUSY)
  t.equal(f.router.loads.outstanding('A'), 4, 'the estimate is the member\'s own word')
  t.equal(f.router.choose('m'), null, 'no member looks free: the next request waits for an offer')
})

t.test('a member that stops serving the model hears the want withdrawn, though requests still wait', async (t) => {
  const f = fixture(t, { members: [member('A', ['m'], 4), member('B', ['m'], 4)] })
  const ac = new AbortController()
  const waiting = f.router.wait('m', 10_000, ac.signal)
  await turn()
  t.same(f.wants.map((w) => [w.member, w.waiting]).sort(), [['A', 1], ['B', 1]])
  const notReady = member('A', ['m'], 0)
  notReady.heartbeat.replica!.ready = false
  f.membership.list = [notReady, member('B', ['m'], 4)]
  f.membership.emit('member:update', notReady)
  await turn()
  t.same(f.wants.slice(2).map((w) => [w.member, w.waiting]), [['A', 0]], 'A (not ready) is told nobody waits for it; B keeps the want')
  ac.abort()
  t.equal(await waiting, null)
})
