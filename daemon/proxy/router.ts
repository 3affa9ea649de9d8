/**
 * The router at the entry node: which members can serve a model right now,
 * how loaded each looks from here (LoadView), the choice (pick.ts), the
 * queue where requests wait when no member has room, and the dispatch to the
 * local replica or to a peer over /meshd/infer/1.
 *
 * Estimates are only hints. Each member is the authority on its own slots
 * (slot-broker.ts): a request sent on an estimate is admitted only into a
 * slot that is really free, and a full member refuses it at once
 * (`member_busy`), so the front door tries another or waits. A waiting
 * request is never released on this node's view of a remote member (which
 * may be a heartbeat old): it registers a want with every member serving the
 * model, over /meshd/slots/1, and goes to the first member that offers it a
 * slot. So no stale view can leave a slot idle while a request waits for
 * longer than one offer round trip, whichever node the request entered at.
 */
import type { Membership } from '../../mesh/membership/service.ts'
import type { Member } from '../../mesh/membership/table.ts'
import type { LoadReport } from '../../mesh/infer/schemas.ts'
import type { WantUpdate } from '../../mesh/slots/client.ts'
import { MAX_WANT_HEADS } from '../../mesh/slots/schemas.ts'
import { LoadView } from './load-view.ts'
import { EntryQueue } from './entry-queue.ts'
import { pick, POLICIES, type Candidate, type RoutingPolicy } from './pick.ts'
import type { ReplicaUpstream } from './replica-upstream.ts'
import type { SlotBroker } from './slot-broker.ts'
import { UpstreamError, onSettled, type UpstreamRequest, type UpstreamResponse } from '../../mesh/infer/upstream.ts'

export interface RouterInit {
  selfId: string
  policy: string
  maxQueue: number
  random?: () => number
}

/** Requests to a peer over the mesh (mesh/infer/client.ts). */
export interface InferTransport {
  request: (peer: string, req: UpstreamRequest, onTrailer?: (load: LoadReport) => void) => Promise<UpstreamResponse>
  close: () => void
}

/** Wants and declines to a peer (mesh/slots/client.ts); offers come back through Router.offer(). */
export interface SlotsTransport {
  want: (member: string, w: WantUpdate) => void
  decline: (member: string, id: string) => void
  forget: (member: string) => void
  close: () => void
}

export interface RouterComponents {
  membership: Pick<Membership, 'members' | 'on'>
  infer: InferTransport
  slots: SlotsTransport
  /** The local replica and its slot broker, when this node runs one. */
  local: { replica: ReplicaUpstream, broker: SlotBroker } | null
  /** Whether the local replica may take traffic now (ready, and this node not draining). */
  localServes: () => boolean
  localModels: () => string[]
  /** Told the number of waiting requests whenever it changes (the queue-length gauge). */
  onQueueLength?: (n: number) => void
}

export type Availability = 'available' | 'saturated' | 'no_member'

/** A member chosen for a request; `offer` when the member offered the slot. */
export interface Route extends Candidate {
  offer?: string
}

export class Router {
  readonly loads = new LoadView()
  readonly queue: EntryQueue<Route>
  private readonly init: RouterInit
  private readonly c: RouterComponents
  private readonly policy: RoutingPolicy
  private readonly random: () => number
  private readonly infer: InferTransport
  private readonly slots: SlotsTransport
  /** Models whose waiters changed since the members were last told. */
  private readonly dirty = new Set<string>()
  private flushScheduled = false
  /** What each member was last told per model: `waiting:oldest`, to send only changes. */
  private readonly told = new Map<string, Map<string, string>>()
  /** The last offer seq handled from the local broker (see Want.seen). */
  private localSeen = 0
  private stopped = false

  constructor (init: RouterInit, components: RouterComponents) {
    this.init = init
    this.c = components
    const policy = POLICIES[init.policy]
    if (policy === undefined) throw new Error(`unknown routing policy ${init.policy}`)
    this.policy = policy
    this.random = init.random ?? Math.random
    this.queue = new EntryQueue<Route>(init.maxQueue, (model) => {
      this.c.onQueueLength?.(this.queue.length)
      this.markDirty(model)
    })
    this.infer = components.infer
    this.slots = components.slots
    components.membership.on('member:update', (m) => { this.onHeartbeat(m) })
    // A member whose state changes may start or stop serving: what waits here is told again (or withdrawn).
    const retell = (): void => { for (const model of this.queue.models()) this.markDirty(model) }
    components.membership.on('member:alive', retell)
    components.membership.on('member:suspect', retell)
    components.membership.on('member:dead', retell)
    components.membership.on('member:left', retell)
    components.membership.on('member:forget', (id) => {
      this.loads.forget(id)
      this.slots.forget(id)
      this.told.delete(id)
    })
  }

  /** Members that may serve `model` now, with load estimates. */
  candidates (model: string): Candidate[] {
    const out: Candidate[] = []
    const self = this.init.selfId
    const local = this.c.local
    if (local !== null && this.c.localServes() && this.c.localModels().includes(model)) {
      const l = local.replica.load()
      out.push({ id: self, local: true, outstanding: l.inflight + l.queued, slots: l.slots, ...(l.rate !== undefined ? { rate: l.rate } : {}) })
    }
    for (const m of this.c.membership.members()) {
      if (m.id === self || !servesNow(m, model)) continue
      const rate = this.loads.rate(m.id)
      out.push({ id: m.id, local: false, outstanding: this.loads.outstanding(m.id), slots: m.heartbeat.replica!.slots, ...(rate !== undefined ? { rate } : {}) })
    }
    return out
  }

  /** Whether any member (ready or not) offers `model`: decides 404 against 503. */
  knowsModel (model: string): boolean {
    if (this.c.localModels().includes(model)) return true
    return this.c.membership.members().some((m) => m.state === 'alive' && m.heartbeat.replica?.models.includes(model) === true)
  }

  /** Models served anywhere in the mesh, with how many ready members serve each. */
  models (): Map<string, number> {
    const out = new Map<string, number>()
    const add = (model: string, ready: boolean): void => { out.set(model, (out.get(model) ?? 0) + (ready ? 1 : 0)) }
    for (const m of this.c.membership.members()) {
      if (m.state !== 'alive' || m.heartbeat.replica === null) continue
      if (m.id === this.init.selfId && this.c.local !== null) continue
      for (const model of m.heartbeat.replica.models) add(model, servesNow(m, model))
    }
    if (this.c.local !== null) for (const model of this.c.localModels()) add(model, this.c.localServes())
    return out
  }

  /**
   * Chooses a member that looks like it has room, for a request sent at once.
   * A local choice is admitted here and now (the broker is in this process);
   * a remote one is counted in this node's estimate and admitted, or refused,
   * by the member. Null: nobody looks free, or requests for the model already
   * wait here (a newcomer must not overtake them), so the caller waits.
   */
  choose (model: string, exclude?: ReadonlySet<string>): Route | null {
    if (this.queue.waiting(model) > 0) return null
    const all = this.candidates(model)
    let skip = exclude
    for (;;) {
      const c = pick(this.policy, { model }, all, this.random, skip)
      if (c === null) return null
      if (!c.local) {
        this.loads.dispatched(c.id)
        return c
      }
      if (this.c.local!.broker.admit(Date.now())) return c
      // The view of our own replica is exact, so this only happens when a
      // slot is held for an offer: look at the others.
      skip = new Set([...(skip ?? []), c.id])
    }
  }

  availability (model: string, exclude?: ReadonlySet<string>): Availability {
    const cs = this.candidates(model).filter((c) => exclude === undefined || !exclude.has(c.id))
    return cs.length === 0 ? 'no_member' : 'saturated'
  }

  /**
   * Waits at this entry node until a member offers a slot; null on timeout,
   * abort or a full queue. `exclude`: members that failed this request.
   */
  async wait (model: string, timeoutMs: number, signal: AbortSignal, exclude?: ReadonlySet<string>): Promise<Route | null> {
    return this.queue.wait(model, timeoutMs, signal, exclude)
  }

  /** Gives back a route that will not be used (the client left before dispatch). */
  release (r: Route): void {
    if (r.local) {
      this.c.local?.broker.release(Date.now())
      return
    }
    this.loads.finished(r.id)
    if (r.offer !== undefined) this.slots.decline(r.id, r.offer)
  }

  stop (): void {
    this.stopped = true
    this.infer.close()
    this.slots.close()
    this.queue.clear()
  }

  /**
   * Sends the request to the chosen member. Releases the reservation whatever
   * happens. A full member's refusal is an UpstreamError with code
   * MEMBER_BUSY; its load updates the estimate.
   */
  async dispatch (r: Route, req: UpstreamRequest): Promise<UpstreamResponse> {
    if (r.local) {
      const local = this.c.local
      if (local === null) throw new Error('no local replica')
      return local.replica.request(req)
    }
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.loads.finished(r.id)
    }
    let up: UpstreamResponse
    try {
      up = await this.infer.request(r.id, r.offer !== undefined ? { ...req, offer: r.offer } : req, (load) => { this.loads.report(r.id, load) })
    } catch (err) {
      release()
      if (err instanceof UpstreamError && err.load !== undefined) this.loads.report(r.id, err.load)
      throw err
    }
    if (up.load !== undefined) this.loads.report(r.id, up.load)
    return {
      ...up,
      body: onSettled(up.body, release),
      abort: (reason?: Error) => { up.abort(reason); release() }
    }
  }

  /** A local offer from our own broker (called from its send callback: deferred, no re-entry). */
  localOffer (id: string, model: string, seq: number): void {
    queueMicrotask(() => {
      if (seq > this.localSeen) this.localSeen = seq
      this.offer(this.init.selfId, id, model, undefined)
    })
  }

  /** A member holds a slot for us: the oldest waiter for the model takes it, or we decline. */
  offer (member: string, id: string, model: string, load: LoadReport | undefined): void {
    if (load !== undefined) this.loads.report(member, load)
    const self = member === this.init.selfId
    const local = this.c.local
    const took = !this.stopped && this.queue.take(model, member, () => {
      if (self) {
        if (local === null || !local.broker.admit(Date.now(), { id, entry: member })) return null
        const l = local.replica.load()
        return { id: member, local: true, outstanding: l.inflight + l.queued, slots: l.slots }
      }
      this.loads.dispatched(member)
      return { id: member, local: false, outstanding: this.loads.outstanding(member), slots: load?.slots ?? 0, offer: id }
    })
    if (took) return
    if (self) local?.broker.decline(member, id, Date.now())
    else this.slots.decline(member, id)
  }

  private onHeartbeat (m: Member): void {
    const r = m.heartbeat.replica
    if (m.id === this.init.selfId || r === null) return
    this.loads.report(m.id, { inflight: r.inflight, queued: r.queued, slots: r.slots, at: m.heartbeat.sent_at, ...(r.rate !== undefined ? { rate: r.rate } : {}) })
    // A member that just became ready learns what waits here.
    for (const model of this.queue.models()) if (r.models.includes(model)) this.markDirty(model)
  }

  private markDirty (model: string): void {
    this.dirty.add(model)
    if (this.flushScheduled || this.stopped) return
    this.flushScheduled = true
    // Coalesce a burst of queue changes into one want per member.
    setImmediate(() => { this.flushScheduled = false; this.flushWants() })
  }

  /** Tells every member serving a dirty model how many wait for it here now. */
  private flushWants (): void {
    if (this.stopped) return
    const self = this.init.selfId
    for (const model of this.dirty) {
      const h = this.queue.heads(model, MAX_WANT_HEADS)
      // Members that may serve the model now hear how many wait; those told
      // earlier that no longer serve it (dead, draining, not ready) or when
      // nobody waits any more hear that the want is withdrawn.
      const serving = new Set<string>()
      if (h.waiting > 0) {
        if (this.c.local !== null && this.c.localServes() && this.c.localModels().includes(model)) serving.add(self)
        for (const m of this.c.membership.members()) if (m.id !== self && servesNow(m, model)) serving.add(m.id)
      }
      const targets = new Set(serving)
      for (const [member, models] of this.told) if (models.has(model)) targets.add(member)
      for (const member of targets) {
        const waiting = serving.has(member) ? h.waiting : 0
        const key = `${waiting}:${h.oldest}`
        let models = this.told.get(member)
        if (models?.get(model) === key) continue
        if (models === undefined) { models = new Map(); this.told.set(member, models) }
        if (waiting === 0) models.delete(model)
        else models.set(model, key)
        const headsMs = waiting === 0 ? [] : h.headsMs
        if (member === self) {
          this.c.local?.broker.want(self, { model, waiting, headsMs, seen: this.localSeen }, Date.now())
        } else {
          this.slots.want(member, { model, waiting, headsMs })
        }
      }
    }
    this.dirty.clear()
  }
}

/** Alive, not draining, replica ready and serving the model. */
export function servesNow (m: Member, model: string): boolean {
  const r = m.heartbeat.replica
  return m.state === 'alive' && m.heartbeat.state === 'alive' && r !== null && r.ready && !r.draining && r.slots > 0 && r.models.includes(model)
}
