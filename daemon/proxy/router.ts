/**
 * The router: which members can serve a model right now, how loaded each
 * is (LoadView, corrected by this node's own dispatches), the choice
 * (pick.ts), the bounded queue at the entry node when all are saturated, and
 * the dispatch to the local replica or to a peer over /meshd/infer/1.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { MeshNode } from '../../mesh/node.ts'
import type { Membership } from '../../mesh/membership/service.ts'
import type { Member } from '../../mesh/membership/table.ts'
import { InferClient } from '../../mesh/infer/client.ts'
import { LoadView } from './load-view.ts'
import { EntryQueue } from './entry-queue.ts'
import { pick, POLICIES, type Candidate, type RoutingPolicy } from './pick.ts'
import type { LocalReplica } from './local-replica.ts'
import { onSettled, type UpstreamRequest, type UpstreamResponse } from './upstream.ts'

export interface RouterInit {
  selfId: string
  policy: string
  maxQueue: number
  random?: () => number
}

export interface RouterComponents {
  node: MeshNode
  membership: Membership
  /** The local replica, when this node runs one. */
  local: LocalReplica | null
  /** Whether the local replica may take traffic now (ready, and this node not draining). */
  localServes: () => boolean
  localModels: () => string[]
}

export type Availability = 'available' | 'saturated' | 'no_member'

const RECHECK_MS = 100

export class Router {
  readonly loads = new LoadView()
  readonly queue: EntryQueue<Candidate>
  private readonly init: RouterInit
  private readonly c: RouterComponents
  private readonly policy: RoutingPolicy
  private readonly random: () => number
  /** Local dispatches chosen but not yet handed to the replica (so the next pick sees them). */
  private localPending = 0
  private readonly infer: InferClient

  constructor (init: RouterInit, components: RouterComponents) {
    this.init = init
    this.c = components
    const policy = POLICIES[init.policy]
    if (policy === undefined) throw new Error(`unknown routing policy ${init.policy}`)
    this.policy = policy
    this.random = init.random ?? Math.random
    this.queue = new EntryQueue(init.maxQueue)
    this.infer = new InferClient(components.node)
    components.membership.on('member:update', (m) => { this.onHeartbeat(m) })
    components.membership.on('member:forget', (id) => { this.loads.forget(id) })
    // Anything that may free capacity gives queued requests another chance.
    components.membership.on('member:alive', () => { this.queue.kick() })
    components.local?.onFinish(() => { this.queue.kick() })
  }

  /** Members that may serve `model` now, with load estimates. */
  candidates (model: string): Candidate[] {
    const out: Candidate[] = []
    const self = this.init.selfId
    if (this.c.local !== null && this.c.localServes() && this.c.localModels().includes(model)) {
      const l = this.c.local.load()
      out.push({ id: self, local: true, outstanding: l.inflight + l.queued + this.localPending, slots: l.slots })
    }
    for (const m of this.c.membership.members()) {
      if (m.id === self || !servesNow(m, model)) continue
      out.push({ id: m.id, local: false, outstanding: this.loads.outstanding(m.id), slots: m.heartbeat.replica!.slots })
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
   * Chooses a member with room and reserves a place there (counted at once,
   * so the next choice sees it). Null: none has room, or none is left.
   */
  choose (model: string, exclude?: ReadonlySet<string>): Candidate | null {
    const c = pick(this.policy, { model }, this.candidates(model), this.random, exclude)
    if (c === null) return null
    if (c.local) this.localPending++
    else this.loads.dispatched(c.id)
    return c
  }

  availability (model: string, exclude?: ReadonlySet<string>): Availability {
    const cs = this.candidates(model).filter((c) => exclude === undefined || !exclude.has(c.id))
    return cs.length === 0 ? 'no_member' : 'saturated'
  }

  /** Waits at the entry node for a member with room; null on timeout, abort or a full queue. */
  async wait (model: string, timeoutMs: number, signal: AbortSignal, exclude?: ReadonlySet<string>): Promise<Candidate | null> {
    const waiting = this.queue.wait(() => this.choose(model, exclude), timeoutMs, signal)
    if (waiting === null) return null
    this.recheckWhileQueued()
    return waiting
  }

  /** Gives back a place reserved by choose() that will not be used (the client left). */
  release (c: Candidate): void {
    if (c.local) this.localPending--
    else this.loads.finished(c.id)
    this.queue.kick()
  }

  /**
   * Capacity also frees up where no event tells us: a request from a client
   * that bypasses meshd ends (seen only in the engine's metrics), an estimate
   * ages. While anything waits, look again every RECHECK_MS.
   */
  private recheckTimer: NodeJS.Timeout | undefined
  private recheckWhileQueued (): void {
    if (this.recheckTimer !== undefined) return
    this.recheckTimer = setInterval(() => {
      this.queue.kick()
      if (this.queue.length === 0) {
        clearInterval(this.recheckTimer)
        this.recheckTimer = undefined
      }
    }, RECHECK_MS)
  }

  stop (): void {
    this.infer.close()
    clearInterval(this.recheckTimer)
    this.recheckTimer = undefined
    this.queue.clear()
  }

  /** Sends the request to the chosen member. Releases the reservation whatever happens. */
  async dispatch (c: Candidate, req: UpstreamRequest): Promise<UpstreamResponse> {
    if (c.local) {
      this.localPending--
      if (this.c.local === null) throw new Error('no local replica')
      return this.c.local.request(req)
    }
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.loads.finished(c.id)
      this.queue.kick()
    }
    let up: UpstreamResponse
    try {
      up = await this.infer.request(peerIdFromString(c.id), req, (load) => { this.loads.report(c.id, load) })
    } catch (err) {
      release()
      throw err
    }
    if (up.load !== undefined) this.loads.report(c.id, up.load)
    const body = up.body
    return {
      ...up,
      body: onSettled(body, release),
      abort: (reason?: Error) => { up.abort(reason); release() }
    }
  }

  private onHeartbeat (m: Member): void {
    const r = m.heartbeat.replica
    if (m.id === this.init.selfId || r === null) return
    this.loads.report(m.id, { inflight: r.inflight, queued: r.queued, slots: r.slots, at: m.heartbeat.sent_at })
    this.queue.kick()
  }
}

/** Alive, not draining, replica ready and serving the model. */
export function servesNow (m: Member, model: string): boolean {
  const r = m.heartbeat.replica
  return m.state === 'alive' && m.heartbeat.state === 'alive' && r !== null && r.ready && !r.draining && r.slots > 0 && r.models.includes(model)
}
