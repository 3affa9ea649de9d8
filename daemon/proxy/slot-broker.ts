/**
 * The serving member's authority over its own slots. Every request meshd
 * sends to this member's replica, from any entry node, is admitted here
 * first, so the count is exact the moment a slot frees; no entry node's
 * estimate, however stale, can put more than `slots` requests on the replica
 * or leave a slot idle for longer than one offer round trip while a request
 * waits anywhere in the mesh.
 *
 * Late binding across nodes (Sparrow's reservations, turned around): an entry
 * node whose requests wait registers a *want* with every member serving the
 * model: how many wait, and how long the oldest have waited. When a slot is
 * free and someone wants one, the broker reserves it and *offers* it to the
 * entry whose oldest waiter has waited longest (one FIFO across all entry
 * nodes). The entry takes the offer by sending a request that names it, or
 * declines it; an offer neither taken nor declined within its ttl lapses and
 * the slot is offered again. A request that arrives without an offer is
 * admitted only into a slot that is free after every reservation, so it
 * cannot overtake anyone who waits.
 *
 * Pure: no clock of its own (callers pass `now`), no I/O; offers leave through
 * the `send` callback.
 */
import { MAX_WANT_HEADS } from '../../mesh/slots/schemas.ts'

export interface Offer {
  id: string
  entry: string
  model: string
  /** Offer sequence on this entry's stream, for want/offer ordering (see Want.seen). */
  seq: number
  expiresAt: number
}

export interface Want {
  model: string
  /** Requests waiting for this model at the entry node, not counting offers it has already taken. */
  waiting: number
  /** How long the oldest waiters have waited (ms, oldest first, at most MAX_WANT_HEADS). */
  headsMs: number[]
  /**
   * The highest offer seq from this member the entry had handled when it
   * counted `waiting`. Offers after it are not reflected in the count yet
   * (each will take one of the waiters): without this, a want that crosses an
   * offer on the wire would be read as unmet demand and draw a second offer.
   */
  seen: number
}

export interface BrokerLoad {
  /** Requests meshd has at the replica (admitted, not finished). */
  busy: number
  /** Slots held for offers not yet taken. */
  reserved: number
  /** Load on the engine that did not come through meshd (its own metrics). */
  bypass: number
  slots: number
}

/** An offer not taken or declined within this long lapses (the entry may have died). */
export const OFFER_TTL_MS = 2000

interface EntryWants {
  models: Map<string, { waiting: number, heads: number[], seen: number }>
  /** Last offer seq given to this entry (per entry, not per model: one stream). */
  seq: number
  /**
   * Offers this entry took or declined that its last want had not seen yet:
   * that want still counts the waiter each one served (or found missing), so
   * they count against its demand until a want that has seen them arrives.
   */
  answered: Array<{ model: string, seq: number }>
}

export class SlotBroker {
  private slots: number
  private busyCount = 0
  /** The most requests admitted at once since takePeakBusy() last ran. */
  private peak = 0
  private bypass = 0
  private open = false
  private readonly served: Set<string>
  private readonly offers = new Map<string, Offer>()
  private readonly entries = new Map<string, EntryWants>()
  private readonly send: (o: Offer) => void
  private nextId = 0
  private readonly prefix: string

  /**
   * `send` delivers an offer to its entry node; it is called synchronously
   * from the method that freed the slot, so callers must not re-enter the
   * broker from it (defer the reaction, e.g. with queueMicrotask).
   */
  constructor (init: { slots: number, models: readonly string[], idPrefix?: string }, send: (o: Offer) => void) {
    this.slots = init.slots
    this.served = new Set(init.models)
    this.send = send
    this.prefix = init.idPrefix ?? 'o'
  }

  /** Slots neither running a request nor held for an offer. */
  free (): number {
    return this.slots - this.busyCount - this.bypass - this.offers.size
  }

  load (): BrokerLoad {
    return { busy: this.busyCount, reserved: this.offers.size, bypass: this.bypass, slots: this.slots }
  }

  get busy (): number {
    return this.busyCount
  }

  /** The most requests meshd had at the replica since the last call; starts a new window. */
  takePeakBusy (): number {
    const p = Math.max(this.peak, this.busyCount)
    this.peak = this.busyCount
    return p
  }

  /** Whether the replica takes requests (ready and not draining); a closed broker admits and offers nothing. */
  setOpen (open: boolean, now: number): void {
    if (this.open === open) return
    this.open = open
    if (!open) this.offers.clear()
    else this.distribute(now)
  }

  /**
   * Admits a request to the replica. With the id of a live offer made to this
   * entry, it takes the reserved slot; otherwise it needs a slot free after all
   * reservations. False: the member is full (the entry node tries another
   * member or waits for an offer).
   */
  admit (now: number, offer?: { id: string, entry: string }): boolean {
    if (!this.open) return false
    this.expire(now)
    if (offer !== undefined) {
      const o = this.offers.get(offer.id)
      if (o !== undefined && o.entry === offer.entry) {
        this.offers.delete(offer.id)
        this.answered(o)
        this.take()
        return true
      }
    }
    if (this.free() <= 0) return false
    this.take()
    return true
  }

  private take (): void {
    this.busyCount++
    if (this.busyCount > this.peak) this.peak = this.busyCount
  }

  /** A request admitted here finished (or never reached the replica): its slot goes to whoever waits longest. */
  release (now: number): void {
    if (this.busyCount > 0) this.busyCount--
    this.distribute(now)
  }

  /**
   * Load the engine reports beyond meshd's own requests (clients that bypass
   * meshd). Lowering it can free slots, so it distributes.
   */
  setBypass (n: number, now: number): void {
    this.bypass = Math.max(0, Math.floor(n))
    this.distribute(now)
  }

  /** An entry node's current demand for one model (waiting 0 withdraws it). */
  want (entry: string, w: Want, now: number): void {
    const e = this.entry(entry)
    e.answered = e.answered.filter((a) => a.seq > w.seen)
    if (w.waiting <= 0) e.models.delete(w.model)
    else e.models.set(w.model, { waiting: w.waiting, heads: w.headsMs.slice(0, MAX_WANT_HEADS).map((ms) => now - Math.max(0, ms)), seen: w.seen })
    this.distribute(now)
  }

  /** The entry node has no waiter for this offer: the slot goes to the next. */
  decline (entry: string, id: string, now: number): void {
    const o = this.offers.get(id)
    if (o === undefined || o.entry !== entry) return
    this.offers.delete(id)
    this.answered(o)
    this.distribute(now)
  }

  /** The entry node went away (its stream closed): forget its wants and free what it was offered. */
  forget (entry: string, now: number): void {
    this.entries.delete(entry)
    for (const [id, o] of this.offers) if (o.entry === entry) this.offers.delete(id)
    this.distribute(now)
  }

  /** Lapses offers past their ttl and offers their slots again. */
  tick (now: number): void {
    if (this.expire(now)) this.distribute(now)
  }

  /** Unmet demand: waiters some entry has that no outstanding offer will serve. */
  unmet (): number {
    let n = 0
    for (const [id, e] of this.entries) for (const [model, m] of e.models) n += this.unmetFor(id, e, model, m)
    return n
  }

  private expire (now: number): boolean {
    let any = false
    for (const [id, o] of this.offers) {
      if (o.expiresAt <= now) { this.offers.delete(id); any = true }
    }
    return any
  }

  private unmetFor (entryId: string, e: EntryWants, model: string, m: { waiting: number, seen: number }): number {
    if (!this.served.has(model)) return 0
    let pending = 0
    for (const o of this.offers.values()) if (o.entry === entryId && o.model === model && o.seq > m.seen) pending++
    for (const a of e.answered) if (a.model === model && a.seq > m.seen) pending++
    return Math.max(0, m.waiting - pending)
  }

  private answered (o: Offer): void {
    const e = this.entries.get(o.entry)
    const m = e?.models.get(o.model)
    if (e !== undefined && m !== undefined && o.seq > m.seen) e.answered.push({ model: o.model, seq: o.seq })
  }

  /**
   * While a slot is free and someone waits, offer it to the entry whose
   * oldest unserved waiter arrived first. An entry with n pending offers is
   * ranked by its (n+1)-th head: its first n waiters are already served.
   */
  private distribute (now: number): void {
    if (!this.open) return
    this.expire(now)
    while (this.free() > 0) {
      let best: { entry: string, model: string, at: number } | null = null
      for (const [id, e] of this.entries) {
        for (const [model, m] of e.models) {
          const unmet = this.unmetFor(id, e, model, m)
          if (unmet <= 0) continue
          const served = m.waiting - unmet
          // Past the heads we know, rank by the last known one: still older than anyone who arrives later.
          const at = m.heads[Math.min(served, m.heads.length - 1)] ?? now
          if (best === null || at < best.at) best = { entry: id, model, at }
        }
      }
      if (best === null) return
      const e = this.entries.get(best.entry)!
      e.seq++
      const offer: Offer = { id: `${this.prefix}${++this.nextId}`, entry: best.entry, model: best.model, seq: e.seq, expiresAt: now + OFFER_TTL_MS }
      this.offers.set(offer.id, offer)
      this.send(offer)
    }
  }

  private entry (id: string): EntryWants {
    let e = this.entries.get(id)
    if (e === undefined) {
      e = { models: new Map(), seq: 0, answered: [] }
      this.entries.set(id, e)
    }
    return e
  }
}
