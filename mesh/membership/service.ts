/**
 * Membership: publishes this node's heartbeat every mesh.heartbeat_ms,
 * validates and records everyone else's, and turns silence and closed
 * connections into member states (table.ts holds the logic; this file is the
 * I/O around it). Emits typed `member:*` events for the rest of the daemon.
 */
import { EventEmitter } from 'node:events'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { MeshNode } from '../node.ts'
import { heartbeatTopic } from '../topics.ts'
import { heartbeatSchema, HEARTBEAT_VERSION, type Heartbeat } from '../schemas/heartbeat.ts'
import { decodeJson, encodeJson, type RejectReason } from '../gossip/codec.ts'
import { MemberTable, type Member, type Transition } from './table.ts'
import { nameClashes, describeClash } from './names.ts'
import { EVALUATE_EVERY_HEARTBEATS, type FailureTiming } from './constants.ts'
import type { MemberState } from './suspicion.ts'
import type { Startable } from '../startable.ts'

/** The parts of a heartbeat that describe this node right now. */
export type SelfDescription = Omit<Heartbeat, 'v' | 'cluster' | 'id' | 'incarnation' | 'seq' | 'sent_at' | 'addrs'>

export interface MembershipMetrics {
  heartbeatsSent: { inc: (n?: number) => void }
  heartbeatBytes: { inc: (n?: number) => void }
  heartbeatsReceived: { inc: (n?: number) => void }
  gossipRejected: { inc: (labels: { topic: string, reason: string }) => void }
  memberTransitions: { inc: (labels: { to: string }) => void }
  members: { set: (labels: { state: string }, v: number) => void }
}

export interface MembershipInit {
  cluster: string
  incarnation: number
  timing: FailureTiming
  maxMessageBytes: number
  describeSelf: () => SelfDescription
  now?: () => number
}

export interface MembershipComponents {
  node: MeshNode
  /**
   * Redials a member whose last connection just closed; resolves false when
   * it cannot be reached. A killed process's port refuses at once, so this
   * stays the fast path for crashes, while a connection dropped for another
   * reason (a timeout under load, a NAT rebinding) does not cost a false
   * suspicion.
   */
  probe?: (peer: PeerId) => Promise<boolean>
  metrics: MembershipMetrics
  log: { info: (o: object, msg: string) => void, warn: (o: object, msg: string) => void, debug: (o: object, msg: string) => void }
}

export interface MembershipEvents {
  'member:join': [Member]
  'member:alive': [Member]
  'member:suspect': [Member]
  'member:dead': [Member]
  'member:left': [Member]
  'member:update': [Member]
  'member:forget': [string]
}

export class Membership extends EventEmitter<MembershipEvents> implements Startable {
  readonly table: MemberTable
  readonly selfId: string
  private readonly init: MembershipInit
  private readonly c: MembershipComponents
  private readonly topic: string
  private readonly now: () => number
  private seq = 0
  private heartbeatTimer: NodeJS.Timeout | undefined
  private evaluateTimer: NodeJS.Timeout | undefined
  private readonly decoded = new WeakMap<Message, Heartbeat>()
  private readonly onMessage = (evt: CustomEvent<Message>): void => { this.handleMessage(evt.detail) }
  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.handleTransition(this.table.observeConnected(evt.detail.toString(), this.now()))
    this.publishSoon()
  }
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => { this.handleDisconnect(evt.detail) }

  constructor (init: MembershipInit, components: MembershipComponents) {
    super()
    this.init = init
    this.c = components
    this.now = init.now ?? Date.now
    this.selfId = components.node.peerId.toString()
    this.topic = heartbeatTopic(init.cluster)
    this.table = new MemberTable(this.selfId, init.timing)
  }

  start (): void {
    const pubsub = this.c.node.services.pubsub
    pubsub.topicValidators.set(this.topic, (from, msg) => this.validate(from, msg))
    pubsub.addEventListener('message', this.onMessage)
    pubsub.subscribe(this.topic)
    this.c.node.addEventListener('peer:connect', this.onConnect)
    this.c.node.addEventListener('peer:disconnect', this.onDisconnect)
    this.publish()
    this.heartbeatTimer = setInterval(() => { this.publish() }, this.init.timing.heartbeatMs)
    const every = Math.max(20, Math.round(this.init.timing.heartbeatMs * EVALUATE_EVERY_HEARTBEATS))
    this.evaluateTimer = setInterval(() => { this.evaluate() }, every)
  }

  /** Publishes a final `left` heartbeat so others list us as left, not dead. */
  async announceLeave (): Promise<void> {
    this.leaving = true
    await this.publishNow()
  }

  private stopped = false

  stop (): void {
    this.stopped = true
    clearTimeout(this.soon)
    clearInterval(this.heartbeatTimer)
    clearInterval(this.evaluateTimer)
    const pubsub = this.c.node.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.topicValidators.delete(this.topic)
    this.c.node.removeEventListener('peer:connect', this.onConnect)
    this.c.node.removeEventListener('peer:disconnect', this.onDisconnect)
  }

  private soon: NodeJS.Timeout | undefined
  /** An extra heartbeat shortly (debounced: at most one per 100 ms burst of reasons). */
  publishSoon (): void {
    if (this.soon !== undefined || this.stopped) return
    this.soon = setTimeout(() => { this.soon = undefined; if (!this.stopped) void this.publish() }, 100)
  }

  /** Publishes a heartbeat now (used when something changed that others must know at once, e.g. draining). */
  publishNow (): Promise<void> {
    return this.publish()
  }

  /** Members with their current state, self included. */
  members (): Member[] {
    return [...this.table.all()]
  }

  /** One member by peer id (self included), without copying the table. */
  member (id: string): Member | undefined {
    return this.table.get(id)
  }

  private leaving = false

  private buildHeartbeat (): Heartbeat {
    const self = this.init.describeSelf()
    return {
      ...self,
      state: this.leaving ? 'left' : self.state,
      v: HEARTBEAT_VERSION,
      cluster: this.init.cluster,
      id: this.selfId,
      incarnation: this.init.incarnation,
      seq: this.seq++,
      sent_at: this.now(),
      addrs: this.c.node.getMultiaddrs().map((a) => a.toString())
    }
  }

  private async publish (): Promise<void> {
    let hb: Heartbeat
    try {
      hb = this.buildHeartbeat()
    } catch (err) {
      this.c.log.warn({ err }, 'could not describe this node for its heartbeat')
      return
    }
    this.handleTransition(this.table.observeHeartbeat(hb, this.now()).transition)
    const data = encodeJson(hb)
    try {
      await this.c.node.services.pubsub.publish(this.topic, data)
      this.c.metrics.heartbeatsSent.inc()
      this.c.metrics.heartbeatBytes.inc(data.byteLength)
    } catch (err) {
      // Not fatal: the next heartbeat follows in one interval.
      this.c.log.debug({ err }, 'heartbeat publish failed')
    }
  }

  /**
   * The topic validator: runs before a message is delivered or forwarded, so
   * garbage is neither acted upon nor spread. Reject (not Ignore) penalises
   * the sender in gossipsub's peer score.
   */
  private validate (_from: PeerId, msg: Message): TopicValidatorResult {
    const result = decodeJson(msg.data, heartbeatSchema, this.init.maxMessageBytes)
    let reason: RejectReason | null = null
    if (!result.ok) reason = result.reason
    else if (result.value.cluster !== this.init.cluster) reason = 'wrong_cluster'
    else if (msg.type !== 'signed' || msg.from.toString() !== result.value.id) reason = 'spoofed'
    if (reason !== null) {
      this.c.metrics.gossipRejected.inc({ topic: 'heartbeat', reason })
      this.c.log.debug({ reason, detail: result.ok ? undefined : result.detail }, 'rejected heartbeat')
      return TopicValidatorResult.Reject
    }
    if (result.ok) this.decoded.set(msg, result.value)
    return TopicValidatorResult.Accept
  }

  private handleMessage (msg: Message): void {
    if (msg.topic !== this.topic) return
    let hb = this.decoded.get(msg)
    if (hb === undefined) {
      // Delivered without passing our validator (should not happen): decode defensively.
      const r = decodeJson(msg.data, heartbeatSchema, this.init.maxMessageBytes)
      if (!r.ok || msg.type !== 'signed' || msg.from.toString() !== r.value.id || r.value.cluster !== this.init.cluster) return
      hb = r.value
    }
    if (hb.id === this.selfId) return
    const nameBefore = this.table.get(hb.id)?.heartbeat.name
    const { outcome, transition } = this.table.observeHeartbeat(hb, this.now())
    if (outcome === 'stale') return
    this.c.metrics.heartbeatsReceived.inc()
    const member = this.table.get(hb.id)
    if (member === undefined) return
    if (outcome === 'new') {
      // Tell a newcomer about us now rather than at our next beat: it learns
      // the mesh (and who leads it) within a round trip.
      this.publishSoon()
      // A member already connected before its first heartbeat arrived.
      if (msg.type === 'signed' && this.c.node.getConnections(msg.from).length > 0) this.table.observeConnected(hb.id, this.now())
      this.emit('member:join', member)
    }
    this.handleTransition(transition)
    if (hb.name !== nameBefore || (transition !== null && transition.to === 'alive')) this.checkName(hb.name)
    this.emit('member:update', member)
  }

  /** Name clashes warned about (name and ids), so each is logged once, not on every heartbeat. */
  private readonly warnedClashes = new Set<string>()

  /** Warns when a member's name is also another member's (names.ts): once per clash, naming both peer ids. */
  private checkName (name: string): void {
    for (const c of nameClashes(this.table.all())) {
      if (c.name !== name) continue
      const key = `${c.name}\n${c.ids.join(',')}`
      if (this.warnedClashes.has(key)) continue
      this.warnedClashes.add(key)
      this.c.log.warn({ name: c.name, members: c.ids }, describeClash(c))
    }
  }

  private handleDisconnect (peer: PeerId): void {
    const id = peer.toString()
    const m = this.table.get(id)
    if (m === undefined) return
    const probe = this.c.probe
    if (probe === undefined || m.state !== 'alive' || this.stopped) {
      this.handleTransition(this.table.observeDisconnected(id, this.now()))
      return
    }
    m.connected = false
    probe(peer).then((reachable) => {
      if (this.stopped || reachable || this.c.node.getConnections(peer).length > 0) return
      this.handleTransition(this.table.observeDisconnected(id, this.now()))
    }, () => {})
  }

  private evaluate (): void {
    const now = this.now()
    for (const t of this.table.evaluate(now)) this.handleTransition(t)
    for (const id of this.table.forget(now)) this.emit('member:forget', id)
    this.updateGauge()
  }

  private handleTransition (t: Transition | null): void {
    if (t === null || t.from === t.to) return
    this.c.metrics.memberTransitions.inc({ to: t.to })
    if (t.from !== 'unknown') this.c.log.info({ member: t.id, name: t.member.heartbeat.name, from: t.from, to: t.to }, `member ${t.member.heartbeat.name} is ${t.to}`)
    const event = `member:${t.to}` as const
    this.emit(event, t.member)
  }

  private updateGauge (): void {
    const counts: Record<MemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 }
    for (const m of this.table.all()) counts[m.state]++
    for (const [state, n] of Object.entries(counts)) this.c.metrics.members.set({ state }, n)
  }
}
