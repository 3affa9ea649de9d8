/**
 * The serving side of a node: its replica (supervised), the local replica as
 * an upstream, the mesh transport's server end, the router, and the
 * OpenAI-compatible front door. Started after the mesh, stopped before it;
 * `drain()` is the graceful part of a stop.
 */
import type { Config } from './config/schema.ts'
import type { Metrics } from './metrics.ts'
import type { Log } from './log.ts'
import type { MeshNode } from '../mesh/node.ts'
import type { Membership } from '../mesh/membership/service.ts'
import type { ReplicaLoad } from '../mesh/schemas/heartbeat.ts'
import { ReplicaSupervisor } from './replica/supervisor.ts'
import { createReplicaMetrics } from './replica/metrics.ts'
import { LocalReplica } from './proxy/local-replica.ts'
import { Router } from './proxy/router.ts'
import { UpstreamError, type UpstreamRequest, type UpstreamResponse } from './proxy/upstream.ts'
import { InferServer } from '../mesh/infer/server.ts'
import { OpenAIApi } from './http/api.ts'

export interface ServingComponents {
  node: MeshNode
  membership: Membership
  metrics: Metrics
  log: Log
}

export class Serving {
  readonly router: Router
  readonly api: OpenAIApi
  readonly supervisor: ReplicaSupervisor | null
  readonly local: LocalReplica | null
  private readonly infer: InferServer
  private readonly config: Config
  private readonly c: ServingComponents
  private draining = false

  constructor (config: Config, selfId: string, components: ServingComponents) {
    this.config = config
    this.c = components
    const r = config.replica
    this.supervisor = r === undefined ? null : new ReplicaSupervisor({ replica: r, nodeName: config.node_name }, { log: components.log.child({ svc: 'replica' }), metrics: createReplicaMetrics(components.metrics.registry) })
    const sup = this.supervisor
    this.local = r === undefined || sup === null
      ? null
      : new LocalReplica({
        selfId,
        slots: r.slots,
        url: () => sup.url,
        engine: () => sup.engineLoad
      })
    this.router = new Router({ selfId, policy: config.routing.policy, maxQueue: config.http.max_queue }, {
      node: components.node,
      membership: components.membership,
      local: this.local,
      localServes: () => this.localServes(),
      localModels: () => r?.models ?? []
    })
    this.infer = new InferServer({ selfId, maxBodyBytes: config.http.max_body_bytes }, {
      node: components.node,
      serve: async (req) => this.serveForPeer(req),
      load: () => this.local?.load() ?? { inflight: 0, queued: 0, slots: 0 },
      log: components.log.child({ svc: 'infer' })
    })
    this.api = new OpenAIApi({
      selfId,
      apiKeys: config.http.api_keys,
      maxBodyBytes: config.http.max_body_bytes,
      bodyTimeoutMs: config.http.body_timeout,
      queueTimeoutMs: config.http.queue_timeout,
      requestTimeoutMs: config.http.request_timeout
    }, {
      router: this.router,
      metrics: components.metrics,
      draining: () => this.draining,
      log: components.log.child({ svc: 'api' })
    })
    this.supervisor?.on('replica:ready', () => { void components.membership.publishNow(); this.router.queue.kick() })
    this.supervisor?.on('replica:unready', () => { void components.membership.publishNow() })
  }

  async start (): Promise<void> {
    await this.infer.start()
    await this.supervisor?.start()
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
    this.infer.closeIdle()
  }

  get isDraining (): boolean {
    return this.draining
  }

  /** Requests in flight, and when one last started or ended (a burst node's idle clock). */
  activity (): { busy: number, lastAt: number } {
    return { busy: this.busy(), lastAt: Math.max(this.api.lastActivityAt, this.local?.lastActivityAt ?? 0) }
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
    this.router.stop()
    await this.infer.stop().catch(() => {})
    await this.supervisor?.stop(10_000)
    await this.local?.close()
  }

  /** Requests still being served or relayed by this node. */
  busy (): number {
    return (this.local?.inflight ?? 0) + this.infer.activeStreams + this.api.active
  }

  private localServes (): boolean {
    return !this.draining && this.supervisor !== null && this.supervisor.ready
  }

  /** A peer asks our replica to serve a request over /meshd/infer/1. */
  private async serveForPeer (req: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.local === null) throw new UpstreamError('no_replica', 'this member runs no replica', true)
    if (!this.localServes()) throw new UpstreamError('replica_unavailable', this.draining ? 'this member is draining' : 'the replica is not ready', true)
    return this.local.request(req)
  }
}
