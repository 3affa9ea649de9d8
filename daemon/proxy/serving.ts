/**
 * The serving side of a node: its replica (supervised), the broker that
 * admits every request to it and offers its freed slots to waiting entry
 * nodes, the local replica as an upstream, the mesh transports' server ends
 * (/meshd/infer/1, /meshd/slots/1) and the router. The OpenAI-compatible
 * front door (http/api.ts) is built by the daemon on this router. Started
 * after the mesh, stopped before it; `drain()` is the graceful part of a stop.
 */
import type { Config } from '../config/schema.ts'
import type { Metrics } from '../metrics.ts'
import type { Log } from '../log.ts'
import type { MeshNode } from '../../mesh/node.ts'
import type { Membership } from '../../mesh/membership/service.ts'
import type { ReplicaLoad } from '../../mesh/schemas/heartbeat.ts'
import { ReplicaSupervisor } from '../replica/supervisor.ts'
import { createReplicaMetrics } from '../replica/metrics.ts'
import { ReplicaUpstream } from './replica-upstream.ts'
import { SlotBroker, OFFER_TTL_MS } from './slot-broker.ts'
import { BypassEstimate } from './bypass.ts'
import { Router } from './router.ts'
import { MEMBER_BUSY, UpstreamError, type UpstreamRequest, type UpstreamResponse } from '../../mesh/infer/upstream.ts'
import { InferServer } from '../../mesh/infer/server.ts'
import { InferClient } from '../../mesh/infer/client.ts'
import { SlotsServer } from '../../mesh/slots/server.ts'
import { SlotsClient } from '../../mesh/slots/client.ts'
import type { Startable } from '../../mesh/startable.ts'

export interface ServingComponents {
  /** The front door's own count of requests it is answering, and when one last started or ended (drain, idle clock). */
  front: { active: () => number, lastActivityAt: () => number }
  node: MeshNode
  membership: Membership
  metrics: Metrics
  log: Log
}

export class Serving implements Startable {
  readonly router: Router
  readonly supervisor: ReplicaSupervisor | null
  readonly local: ReplicaUpstream | null
  /** Admits every request to the local replica and offers its freed slots (null: no replica). */
  readonly broker: SlotBroker | null
  private readonly infer: InferServer
  private readonly slotsServer: SlotsServer
  private readonly bypass = new BypassEstimate()
  /** Lapses unanswered offers, follows readiness and load that bypasses meshd. */
  private brokerTimer: NodeJS.Timeout | undefined
  private readonly selfId: string
  private readonly config: Config
  private readonly c: ServingComponents
  private draining = false

  constructor (config: Config, selfId: string, components: ServingComponents) {
    this.config = config
    this.c = components
    const r = config.replica
    this.supervisor = r === undefined ? null : new ReplicaSupervisor({ replica: r, nodeName: config.node_name }, { log: components.log.child({ svc: 'replica' }), metrics: createReplicaMetrics(components.metrics.registry) })
    const sup = this.supervisor
    this.selfId = selfId
    this.broker = r === undefined ? null : new SlotBroker({ slots: r.slots, models: r.models }, (o) => { this.sendOffer(o.entry, o.id, o.model, o.seq) })
    const broker = this.broker
    this.local = r === undefined || sup === null || broker === null
      ? null
      : new ReplicaUpstream({ selfId, url: () => sup.url }, { broker })
    this.router = new Router({ selfId, policy: config.routing.policy, maxQueue: config.http.max_queue }, {
      membership: components.membership,
      infer: new InferClient(components.node),
      slots: new SlotsClient({ node: components.node, onOffer: (member, o) => { this.router.offer(member, o.id, o.model, o.load) }, log: components.log.child({ svc: 'slots' }) }),
      local: this.local !== null && broker !== null ? { replica: this.local, broker } : null,
      localServes: () => this.localServes(),
      localModels: () => r?.models ?? [],
      onQueueLength: (n) => { components.metrics.queueLength.set(n) }
    })
    this.slotsServer = new SlotsServer({
      node: components.node,
      want: (entry, w) => { this.broker?.want(entry, { model: w.model, waiting: w.waiting, headsMs: w.heads_ms, seen: w.seen }, Date.now()) },
      decline: (entry, id) => { this.broker?.decline(entry, id, Date.now()) },
      gone: (entry) => { this.broker?.forget(entry, Date.now()) },
      log: components.log.child({ svc: 'slots' })
    })
    this.infer = new InferServer({ selfId, maxBodyBytes: config.http.max_body_bytes }, {
      node: components.node,
      serve: async (req, from) => this.serveForPeer(req, from),
      load: () => this.local?.load() ?? { inflight: 0, queued: 0, slots: 0 },
      log: components.log.child({ svc: 'infer' })
    })
    this.supervisor?.on('replica:ready', () => { this.syncBroker(); void components.membership.publishNow() })
    this.supervisor?.on('replica:unready', () => { this.syncBroker(); void components.membership.publishNow() })
  }

  async start (): Promise<void> {
    await this.infer.start()
    await this.slotsServer.start()
    await this.supervisor?.start()
    if (this.broker !== null) {
      this.brokerTimer = setInterval(() => { this.syncBroker() }, BROKER_TICK_MS)
      this.brokerTimer.unref()
    }
  }

  /** Brings the broker up to date: open while the replica serves, offers lapsed, bypassing load counted. */
  private syncBroker (): void {
    const b = this.broker
    if (b === null) return
    const now = Date.now()
    b.setOpen(this.localServes(), now)
    b.tick(now)
    const bypass = this.bypass.update(this.supervisor?.engineLoad ?? null, () => b.takePeakBusy(), now)
    if (bypass !== b.load().bypass) b.setBypass(bypass, now)
  }

  /** Delivers an offer: to our own router in-process, to a peer over its slots stream. */
  private sendOffer (entry: string, id: string, model: string, seq: number): void {
    if (entry === this.selfId) {
      this.router.localOffer(id, model, seq)
      return
    }
    const load = this.local?.load()
    if (!this.slotsServer.offer(entry, { id, model, seq, ttlMs: OFFER_TTL_MS, ...(load !== undefined ? { load } : {}) })) {
      // The entry's stream is gone: give the slot to the next (deferred, not from inside the broker).
      queueMicrotask(() => { this.broker?.forget(entry, Date.now()) })
    }
  }

  /** The replica's part of this node's heartbeat. */
  heartbeat (): ReplicaLoad | null {
    const r = this.config.replica
    if (r === undefined || this.supervisor === null || this.local === null) return null
    const snap = this.supervisor.snapshot()
    const load = this.local.load()
    this.c.metrics.replicaInflight.set(this.local.inflight)
    const out: ReplicaLoad = {
      ready: snap.ready && !this.draining,
      draining: this.draining,
      models: r.models,
      slots: r.slots,
      inflight: load.inflight,
      queued: load.queued,
      qps: Math.round(this.local.qps() * 100) / 100
    }
    if (load.rate !== undefined) out.rate = load.rate
    if (snap.engine?.kvCache !== undefined) out.kv_cache = Math.min(1, Math.max(0, snap.engine.kvCache))
    return out
  }

  /** Whether this node can route a request now (for GET /health). */
  canRoute (): { ok: boolean, reason: string, models: number } {
    if (this.draining) return { ok: false, reason: 'draining', models: 0 }
    const ready = [...this.router.models().values()].filter((n) => n > 0).length
    return ready > 0 ? { ok: true, reason: 'ready', models: ready } : { ok: false, reason: 'no member of the mesh has a ready replica', models: 0 }
  }

  /**
   * Stops taking new requests (the caller publishes the draining heartbeat),
   * waits up to `timeoutMs` for those in flight, then stops the replica.
   */
  /** Stops taking new requests; those in flight go on (the leader's drain before a terminate). */
  startDraining (): void {
    if (this.draining) return
    this.draining = true
    this.syncBroker()
    this.infer.closeIdle()
  }

  get isDraining (): boolean {
    return this.draining
  }

  /** Requests in flight, and when one last started or ended (a burst node's idle clock). */
  activity (): { busy: number, lastAt: number } {
    return { busy: this.busy(), lastAt: Math.max(this.c.front.lastActivityAt(), this.local?.lastActivityAt ?? 0) }
  }

  async drain (timeoutMs: number): Promise<void> {
    this.startDraining()
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline && this.busy() > 0) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const left = this.busy()
    if (left > 0) this.c.log.warn({ requests: left }, 'drain timeout: stopping with requests still in flight')
  }

  async stop (): Promise<void> {
    this.draining = true
    clearInterval(this.brokerTimer)
    this.syncBroker()
    this.router.stop()
    await this.slotsServer.stop().catch(() => {})
    await this.infer.stop().catch(() => {})
    await this.supervisor?.stop(10_000)
    await this.local?.close()
  }

  /** Requests still being served or relayed by this node. */
  busy (): number {
    return (this.local?.inflight ?? 0) + this.infer.activeStreams + this.c.front.active()
  }

  private localServes (): boolean {
    return !this.draining && this.supervisor !== null && this.supervisor.ready
  }

  /**
   * A peer asks our replica to serve a request over /meshd/infer/1. The
   * broker admits it into the slot it offered, or into a free one; a full
   * member refuses at once with its load, before the replica sees anything.
   */
  private async serveForPeer (req: UpstreamRequest, entry: string): Promise<UpstreamResponse> {
    if (this.local === null || this.broker === null) throw new UpstreamError('no_replica', 'this member runs no replica', true)
    if (!this.localServes()) throw new UpstreamError('replica_unavailable', this.draining ? 'this member is draining' : 'the replica is not ready', true)
    if (!this.broker.admit(Date.now(), req.offer !== undefined ? { id: req.offer, entry } : undefined)) {
      throw new UpstreamError(MEMBER_BUSY, 'every slot of this member is taken', true, this.local.load())
    }
    // The entry node writes the access line; this one ties the id to the serving member's own log.
    this.c.log.debug({ request_id: req.id, entry, model: req.model }, 'serving a request for another member')
    return this.local.request(req)
  }
}

/** How often the broker follows readiness, lapses offers and reads the engine's own load. */
const BROKER_TICK_MS = 200
