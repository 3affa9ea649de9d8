/**
 * The member's slot broker, in virtual time: it admits no more than its
 * slots, hands a freed slot to the entry node that has waited longest,
 * lets no direct arrival overtake a waiter, and never leaves a slot idle
 * while a want it could serve is unmet.
 */
import t from 'tap'
import fc from 'fast-check'
import { SlotBroker, OFFER_TTL_MS, type Offer } from '../../daemon/proxy/slot-broker.ts'

function broker (slots: number, models = ['m']): { b: SlotBroker, offers: Offer[] } {
  const offers: Offer[] = []
  const b = new SlotBroker({ slots, models }, (o) => { offers.push(o) })
  b.setOpen(true, 0)
  return { b, offers }
}

t.test('admits up to its slots, refuses beyond, and a release frees one', async (t) => {
  const { b } = broker(2)
  t.ok(b.admit(0))
  t.ok(b.admit(0))
  t.notOk(b.admit(0), 'full')
  b.release(1)
  t.ok(b.admit(1), 'a freed slot is free at once')
})

t.test('a closed broker (replica not ready, or draining) admits and offers nothing', async (t) => {
  const { b, offers } = broker(1)
  b.setOpen(false, 0)
  t.notOk(b.admit(0))
  b.want('E', { model: 'm', waiting: 1, headsMs: [0], seen: 0 }, 0)
  t.equal(offers.length, 0)
  b.setOpen(true, 1)
  t.equal(offers.length, 1, 'opening offers the free slot to the waiting entry')
})

t.test('a freed slot goes to the waiting entry as an offer; no direct arrival overtakes it', async (t) => {
  const { b, offers } = broker(1)
  t.ok(b.admit(0))
  b.want('E', { model: 'm', waiting: 1, headsMs: [50], seen: 0 }, 10)
  t.equal(offers.length, 0, 'nothing free yet')
  b.release(20)
  t.equal(offers.length, 1)
  t.match(offers[0], { entry: 'E', model: 'm', seq: 1, expiresAt: 20 + OFFER_TTL_MS })
  t.notOk(b.admit(21), 'the slot is held for E: a request sent on an estimate is refused')
  t.notOk(b.admit(21, { id: offers[0]!.id, entry: 'F' }), 'another entry cannot take E\'s offer')
  t.ok(b.admit(22, { id: offers[0]!.id, entry: 'E' }), 'E takes it')
  t.equal(b.load().reserved, 0)
  t.equal(b.busy, 1)
})

t.test('slots go to the entry whose oldest waiter waited longest (one FIFO across entry nodes)', async (t) => {
  const { b, offers } = broker(3)
  for (let i = 0; i < 3; i++) b.admit(0)
  b.want('A', { model: 'm', waiting: 2, headsMs: [100, 10], seen: 0 }, 1000)
  b.want('B', { model: 'm', waiting: 1, headsMs: [500], seen: 0 }, 1000)
  b.release(1000)
  b.release(1000)
  b.release(1000)
  t.same(offers.map((o) => o.entry), ['B', 'A', 'A'], 'B (500 ms) first, then A\'s two (100 ms, then 10 ms)')
  t.equal(b.unmet(), 0)
})

t.test('a want that has not seen an offer yet does not draw a second one', async (t) => {
  const { b, offers } = broker(2)
  b.admit(0)
  b.admit(0)
  b.want('E', { model: 'm', waiting: 1, headsMs: [5], seen: 0 }, 0)
  b.release(1)
  t.equal(offers.length, 1)
  // The entry's next want crosses the offer on the wire: it still counts the waiter the offer will take.
  b.want('E', { model: 'm', waiting: 1, headsMs: [6], seen: 0 }, 2)
  b.release(3)
  t.equal(offers.length, 1, 'the pending offer covers that waiter: the second slot stays free')
  t.equal(b.free(), 1)
  // Once the entry has handled the offer, a want of 1 is a new waiter.
  b.want('E', { model: 'm', waiting: 1, headsMs: [1], seen: 1 }, 4)
  t.equal(offers.length, 2)
})

t.test('an offer not answered lapses and goes to the next; a decline passes it on at once', async (t) => {
  const { b, offers } = broker(1)
  b.admit(0)
  b.want('A', { model: 'm', waiting: 1, headsMs: [100], seen: 0 }, 0)
  b.want('B', { model: 'm', waiting: 1, headsMs: [50], seen: 0 }, 0)
  b.release(10)
  t.equal(offers.at(-1)?.entry, 'A')
  b.tick(10 + OFFER_TTL_MS - 1)
  t.equal(offers.length, 1, 'not yet lapsed')
  b.tick(10 + OFFER_TTL_MS)
  // A's want still stands (it never answered), and its waiter is still older: it is offered again.
  t.equal(offers.length, 2)
  t.equal(offers[1]!.entry, 'A')
  b.want('A', { model: 'm', waiting: 0, headsMs: [], seen: 2 }, 10 + OFFER_TTL_MS)
  b.decline('A', offers[1]!.id, 10 + OFFER_TTL_MS)
  t.equal(offers.at(-1)?.entry, 'B', 'declined: B gets the slot')
})

t.test('an entry that goes away frees what it was offered', async (t) => {
  const { b, offers } = broker(1)
  b.want('A', { model: 'm', waiting: 1, headsMs: [100], seen: 0 }, 0)
  t.equal(offers.length, 1)
  t.equal(b.free(), 0)
  b.forget('A', 1)
  t.equal(b.free(), 1)
  t.ok(b.admit(1))
})

t.test('load that bypasses meshd takes slots; when it goes, waiters get them', async (t) => {
  const { b, offers } = broker(2)
  b.setBypass(2, 0)
  t.notOk(b.admit(0))
  b.want('E', { model: 'm', waiting: 1, headsMs: [0], seen: 0 }, 0)
  t.equal(offers.length, 0)
  b.setBypass(1, 1)
  t.equal(offers.length, 1)
})

t.test('wants for a model this member does not serve draw no offer', async (t) => {
  const { b, offers } = broker(1, ['m'])
  b.want('E', { model: 'other', waiting: 3, headsMs: [1000], seen: 0 }, 0)
  t.equal(offers.length, 0)
  t.equal(b.unmet(), 0)
})

type Op =
  | { k: 'admit' }
  | { k: 'take', pick: number, wrongEntry: boolean }
  | { k: 'release' }
  | { k: 'want', entry: number, model: number, waiting: number, age: number, seenAll: boolean }
  | { k: 'decline', pick: number }
  | { k: 'forget', entry: number }
  | { k: 'bypass', n: number }
  | { k: 'open', open: boolean }
  | { k: 'advance', ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ k: 'admit' as const }),
  fc.record({ k: fc.constant('take' as const), pick: fc.nat(20), wrongEntry: fc.boolean() }),
  fc.constant({ k: 'release' as const }),
  fc.record({ k: fc.constant('want' as const), entry: fc.nat(3), model: fc.nat(2), waiting: fc.nat(6), age: fc.nat(5000), seenAll: fc.boolean() }),
  fc.record({ k: fc.constant('decline' as const), pick: fc.nat(20) }),
  fc.record({ k: fc.constant('forget' as const), entry: fc.nat(3) }),
  fc.record({ k: fc.constant('bypass' as const), n: fc.nat(5) }),
  fc.record({ k: fc.constant('open' as const), open: fc.boolean() }),
  fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 3000 }) })
)

t.test('property: never more than its slots taken by meshd, never a free slot while a want it serves is unmet', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 6 }), fc.array(op, { maxLength: 120 }), (slots, ops) => {
    const sent: Offer[] = []
    const b = new SlotBroker({ slots, models: ['m0', 'm1'] }, (o) => { sent.push(o) })
    let now = 0
    let open = true
    b.setOpen(true, now)
    const lastSeq = new Map<string, number>()
    for (const o of sent) lastSeq.set(o.entry, o.seq)
    for (const x of ops) {
      switch (x.k) {
        case 'admit': b.admit(now); break
        case 'take': {
          const o = sent[x.pick % Math.max(1, sent.length)]
          if (o !== undefined) b.admit(now, { id: o.id, entry: x.wrongEntry ? 'intruder' : o.entry })
          break
        }
        case 'release': if (b.busy > 0) b.release(now); break
        case 'want': {
          const entry = `E${x.entry}`
          const seen = x.seenAll ? Math.max(0, ...sent.filter((o) => o.entry === entry).map((o) => o.seq)) : 0
          b.want(entry, { model: `m${x.model}`, waiting: x.waiting, headsMs: Array.from({ length: Math.min(x.waiting, 16) }, (_, i) => Math.max(0, x.age - i * 10)), seen }, now)
          break
        }
        case 'decline': {
          const o = sent[x.pick % Math.max(1, sent.length)]
          if (o !== undefined) b.decline(o.entry, o.id, now)
          break
        }
        case 'forget': b.forget(`E${x.entry}`, now); break
        case 'bypass': b.setBypass(x.n, now); break
        case 'open': open = x.open; b.setOpen(x.open, now); break
        case 'advance': now += x.ms; b.tick(now); break
      }
      const l = b.load()
      if (l.busy + l.reserved > slots) throw new Error(`meshd holds ${l.busy} + ${l.reserved} of ${slots} slots`)
      if (open && b.free() > 0 && b.unmet() > 0) throw new Error(`${b.free()} slot(s) free while ${b.unmet()} wait(s)`)
      if (!open && l.reserved > 0) throw new Error('a closed broker holds offers')
      for (const s of sent) if (s.model !== 'm0' && s.model !== 'm1') throw new Error('offer for a model not served')
    }
  }), { numRuns: 2000 })
  t.pass('2000 random schedules')
})
