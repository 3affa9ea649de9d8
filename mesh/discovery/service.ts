/**
 * Keeps this node connected to every member it knows of, so the mesh stays
 * connected when any one node dies and every member hears every heartbeat
 * first-hand:
 *
 * - dials join/bootstrap addresses and the peers remembered in SQLite at
 *   start (a restarted node rejoins without being told where);
 * - exchanges address books with each new cluster peer (sync protocol) and
 *   dials what it learns;
 * - redials disconnected members with back-off until they are forgotten;
 * - closes connections to peers that are not of this cluster (same swarm key,
 *   other `cluster`): they do not speak the cluster's sync protocol.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { IdentifyResult, PeerId, Stream } from '@libp2p/interface'
import type { MeshNode } from '../node.ts'
import type { Membership } from '../membership/service.ts'
import type { Member } from '../membership/table.ts'
import { syncProtocol } from '../topics.ts'
import { readJson, sendJson } from '../streams.ts'
import { syncMessageSchema, SYNC_MAX_BYTES, SYNC_VERSION, type SyncMessage } from '../schemas/sync.ts'
import { Backoff } from './backoff.ts'
import { isSwarmKeyMismatch } from '../pnet-guard.ts'
import type { Startable } from '../startable.ts'

export interface DiscoveryInit {
  cluster: string
  bootstrap: string[]
  heartbeatMs: number
  dialTimeoutMs?: number
  now?: () => number
}

/** A peer this node has met, as discovery remembers it (kept by the daemon's store). */
export interface KnownPeer {
  id: string
  name: string | null
  addrs: string[]
  source: 'join' | 'gossip' | 'bootstrap'
  voter: boolean
  lastSeen: number
}

/** Where discovery keeps what it learns, across restarts (daemon/store/peers.ts: SQLite). */
export interface PeerMemory {
  list: () => KnownPeer[]
  upsert: (p: KnownPeer) => void
  joinAddrs: () => string[]
  addJoinAddrs: (addrs: string[], now: number) => void
}

export interface DiscoveryComponents {
  node: MeshNode
  membership: Membership
  peers: PeerMemory
  metrics: {
    dials: { inc: (labels: { result: string }) => void }
    peersRefused: { inc: (labels: { reason: string }) => void }
    peersConnected: { set: (v: number) => void }
  }
  log: { info: (o: object, msg: string) => void, warn: (o: object, msg: string) => void, debug: (o: object, msg: string) => void }
}

/** One address of `meshd join`: joined, or why not (`refused: 'swarm_key'` when the connection was made but the private network refused it). */
export interface JoinResult { addr: string, ok: boolean, peer?: string, error?: string, refused?: 'swarm_key' }

const MAX_PARALLEL_DIALS = 8
const PERSIST_EVERY_MS = 15_000
/** How long a member named by an address book but never heard is waited for by settled(). */
const ABSORBED_KEEP_MS = 60_000

export class Discovery implements Startable {
  private readonly init: DiscoveryInit
  private readonly c: DiscoveryComponents
  private readonly protocol: string
  private readonly now: () => number
  private readonly backoff = new Backoff()
  /** Peers remembered from a previous run, dialled until they show up as members. */
  private readonly remembered = new Map<string, string[]>()
  /** `meshd join` addresses, read from SQLite once at start and kept in step by join(): tick() runs every half heartbeat. */
  private readonly joinAddrs = new Set<string>()
  private readonly refused = new Map<string, number>()
  /** Members first learned from an address book, and when (settled() waits for their heartbeats); dropped once they are members. */
  private readonly absorbedAt = new Map<string, number>()
  private inflight = 0
  private timer: NodeJS.Timeout | undefined
  private persistTimer: NodeJS.Timeout | undefined
  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => { void this.handleIdentify(evt.detail) }
  private readonly onJoin = (m: Member): void => { this.learn(m.id, m.heartbeat.addrs); this.remember(m); this.absorbedAt.delete(m.id) }
  private readonly onConnectionChange = (): void => { this.c.metrics.peersConnected.set(this.c.node.getPeers().length) }

  constructor (init: DiscoveryInit, components: DiscoveryComponents) {
    this.init = init
    this.c = components
    this.protocol = syncProtocol(init.cluster)
    this.now = init.now ?? Date.now
  }

  async start (): Promise<void> {
    await this.c.node.handle(this.protocol, (stream) => this.answerSync(stream), { maxInboundStreams: 64 })
    this.c.node.addEventListener('peer:identify', this.onIdentify)
    this.c.node.addEventListener('peer:connect', this.onConnectionChange)
    this.c.node.addEventListener('peer:disconnect', this.onConnectionChange)
    this.c.membership.on('member:join', this.onJoin)
    for (const a of this.c.peers.joinAddrs()) this.joinAddrs.add(a)
    for (const p of this.c.peers.list()) {
      if (p.id === this.c.membership.selfId || p.addrs.length === 0) continue
      this.remembered.set(p.id, p.addrs)
      this.learn(p.id, p.addrs)
    }
    this.tick()
    this.timer = setInterval(() => { this.tick() }, Math.max(100, Math.round(this.init.heartbeatMs / 2)))
    this.persistTimer = setInterval(() => { this.persistAll() }, PERSIST_EVERY_MS)
  }

  stop (): void {
    clearInterval(this.timer)
    clearInterval(this.persistTimer)
    this.persistAll()
    this.c.node.removeEventListener('peer:identify', this.onIdentify)
    this.c.node.removeEventListener('peer:connect', this.onConnectionChange)
    this.c.node.removeEventListener('peer:disconnect', this.onConnectionChange)
    this.c.membership.off('member:join', this.onJoin)
  }

  /**
   * `meshd join`: dial these addresses now and remember them across restarts.
   * Resolves when each dial succeeded or failed.
   */
  async join (addrs: string[]): Promise<JoinResult[]> {
    this.c.peers.addJoinAddrs(addrs, this.now())
    for (const a of addrs) this.joinAddrs.add(a)
    return Promise.all(addrs.map(async (addr): Promise<JoinResult> => {
      try {
        const conn = await this.c.node.dial(multiaddr(addr), { signal: AbortSignal.timeout(this.init.dialTimeoutMs ?? 5000) })
        this.backoff.succeeded(addr)
        return { addr, ok: true, peer: conn.remotePeer.toString() }
      } catch (err) {
        this.backoff.failed(addr, this.now())
        return { addr, ok: false, error: (err as Error).message, ...(isSwarmKeyMismatch(err) ? { refused: 'swarm_key' as const } : {}) }
      }
    }))
  }

  /**
   * Resolves once the mesh behind a join is heard: a heartbeat from each of
   * `peers` and from every member their address books named since `since`
   * (or after `timeoutMs`, whatever is missing). `meshd join` waits for this
   * before it looks at names, so it can say what the mesh it joined holds.
   */
  async settled (peers: string[], since: number, timeoutMs: number): Promise<void> {
    const deadline = this.now() + timeoutMs
    const heard = (id: string): boolean => this.c.membership.table.get(id) !== undefined
    while (this.now() < deadline) {
      const learned = [...this.absorbedAt].filter(([, at]) => at >= since).map(([id]) => id)
      if (peers.every(heard) && learned.every(heard)) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** Dials a member now; false if it cannot be reached within `timeoutMs`. */
  async probe (peer: PeerId, timeoutMs: number): Promise<boolean> {
    try {
      await this.c.node.dial(peer, { signal: AbortSignal.timeout(timeoutMs) })
      return true
    } catch {
      return false
    }
  }

  /** Adds a peer's addresses to libp2p's peer store so it can be dialled by id. */
  private learn (id: string, addrs: string[]): void {
    if (id === this.c.membership.selfId || addrs.length === 0) return
    let peerId: PeerId
    const mas: Multiaddr[] = []
    try {
      peerId = peerIdFromString(id)
      for (const a of addrs) mas.push(multiaddr(a))
    } catch {
      return
    }
    this.c.node.peerStore.merge(peerId, { multiaddrs: mas }).catch(() => {})
  }

  private remember (m: Member): void {
    const hb = m.heartbeat
    this.c.peers.upsert({ id: m.id, name: hb.name, addrs: hb.addrs, source: 'gossip', voter: hb.voter, lastSeen: this.now() })
    this.remembered.delete(m.id)
  }

  private persistAll (): void {
    const now = this.now()
    for (const m of this.c.membership.members()) {
      if (m.id === this.c.membership.selfId || m.state !== 'alive') continue
      this.c.peers.upsert({ id: m.id, name: m.heartbeat.name, addrs: m.heartbeat.addrs, source: 'gossip', voter: m.heartbeat.voter, lastSeen: now })
    }
  }

  /** One pass of the dialer: every known, unconnected, not-departed peer whose back-off is due. */
  private tick (): void {
    const now = this.now()
    const self = this.c.membership.selfId
    const targets: Array<{ key: string, dial: () => Promise<unknown> }> = []
    const connected = new Set(this.c.node.getPeers().map((p) => p.toString()))
    for (const m of this.c.membership.members()) {
      if (m.id === self || m.state === 'left' || connected.has(m.id) || this.isRefused(m.id, now)) continue
      targets.push({ key: m.id, dial: async () => this.c.node.dial(peerIdFromString(m.id)) })
    }
    for (const [id] of this.remembered) {
      if (connected.has(id) || this.c.membership.table.get(id) !== undefined || this.isRefused(id, now)) continue
      targets.push({ key: id, dial: async () => this.c.node.dial(peerIdFromString(id)) })
    }
    for (const addr of [...this.init.bootstrap, ...this.joinAddrs]) {
      const id = peerIdOf(addr)
      if (id !== null && (id === self || connected.has(id) || this.c.membership.table.get(id) !== undefined)) continue
      // An address without /p2p/: dial it until some cluster member answers there.
      if (id === null && connected.size > 0) continue
      targets.push({ key: addr, dial: async () => this.c.node.dial(multiaddr(addr)) })
    }
    for (const t of targets) {
      if (this.inflight >= MAX_PARALLEL_DIALS) break
      if (!this.backoff.due(t.key, now)) continue
      const timeout = this.init.dialTimeoutMs ?? 5000
      this.backoff.attempting(t.key, now, timeout)
      this.inflight++
      t.dial()
        .then(() => { this.backoff.succeeded(t.key); this.c.metrics.dials.inc({ result: 'ok' }) })
        .catch((err: Error) => {
          this.backoff.failed(t.key, this.now())
          this.c.metrics.dials.inc({ result: 'error' })
          this.c.log.debug({ target: t.key, err: err.message }, 'dial failed')
        })
        .finally(() => { this.inflight-- })
    }
  }

  private isRefused (id: string, now: number): boolean {
    const until = this.refused.get(id)
    if (until === undefined) return false
    if (now < until) return true
    this.refused.delete(id)
    return false
  }

  private async handleIdentify (result: IdentifyResult): Promise<void> {
    const peer = result.peerId.toString()
    if (!result.protocols.includes(this.protocol)) {
      // Same swarm key, other cluster (or not meshd at all): never admitted.
      this.refused.set(peer, this.now() + 5 * 60_000)
      this.c.metrics.peersRefused.inc({ reason: 'cluster' })
      this.c.log.warn({ peer, agent: result.agentVersion }, 'closing connection to a peer that is not of this cluster')
      await this.c.node.hangUp(result.peerId).catch(() => {})
      return
    }
    if (result.connection.direction !== 'outbound') return
    try {
      const stream = await result.connection.newStream(this.protocol, { signal: AbortSignal.timeout(5000) })
      await sendJson(stream, this.addressBook())
      this.absorb(await readJson(stream, SYNC_MAX_BYTES))
    } catch (err) {
      this.c.log.debug({ peer, err: (err as Error).message }, 'address book exchange failed')
    }
  }

  private async answerSync (stream: Stream): Promise<void> {
    try {
      this.absorb(await readJson(stream, SYNC_MAX_BYTES))
      await sendJson(stream, this.addressBook())
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  private addressBook (): SyncMessage {
    const members = this.c.membership.members()
      .filter((m) => m.state !== 'left' && m.state !== 'dead')
      .map((m) => ({ id: m.id, addrs: m.heartbeat.addrs.slice(0, 32) }))
    return { v: SYNC_VERSION, cluster: this.init.cluster, members }
  }

  private absorb (raw: unknown): void {
    const parsed = syncMessageSchema.safeParse(raw)
    if (!parsed.success || parsed.data.cluster !== this.init.cluster) return
    const now = this.now()
    for (const [id, at] of this.absorbedAt) if (now - at > ABSORBED_KEEP_MS) this.absorbedAt.delete(id)
    for (const m of parsed.data.members) {
      if (m.id === this.c.membership.selfId || this.c.membership.table.get(m.id) !== undefined) continue
      this.absorbedAt.set(m.id, now)
      this.learn(m.id, m.addrs)
      if (!this.remembered.has(m.id)) this.remembered.set(m.id, m.addrs)
      this.backoff.forget(m.id)
    }
    if (parsed.data.members.length > 0) this.tickSoon(now)
  }

  private tickScheduled = false
  private tickSoon (_now: number): void {
    if (this.tickScheduled) return
    this.tickScheduled = true
    setImmediate(() => { this.tickScheduled = false; this.tick() })
  }
}

function peerIdOf (addr: string): string | null {
  const m = /\/p2p\/([^/]+)/.exec(addr)
  return m === null ? null : m[1]!
}
