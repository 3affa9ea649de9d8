/**
 * Keeps this node connected to every member it knows of, so the mesh stays
 * connected when any one node dies and every member hears every heartbeat
 * first-hand:
 *
 * - dials join/bootstrap addresses and the peers remembered in SQLite at
 *   start (a restarted node rejoins without being told where);
 * - exchanges address books with each new cluster peer (sync protocol) and
 *   takes what it learns as a few short-lived hints;
 * - redials disconnected members with back-off until they are forgotten;
 * - closes connections to peers that are not of this cluster (same swarm key,
 *   other `cluster`): they do not speak the cluster's sync protocol.
 *
 * What is remembered and dialled is decided by book.ts and planner.ts (pure,
 * capped and rate-limited: see constants.ts); this file is the I/O around them.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { IdentifyResult, PeerId, Stream } from '@libp2p/interface'
import type { MeshNode } from '../node.ts'
import type { Membership } from '../membership/service.ts'
import type { Member } from '../membership/table.ts'
import { syncProtocol } from '../topics.ts'
import { readJson, sendJson } from '../streams.ts'
import { syncMessageSchema, SYNC_MAX_BYTES, SYNC_VERSION, type SyncMessage } from '../schemas/sync.ts'
import { AddressBook, SOURCES, type Target } from './book.ts'
import { DialPlanner, dialCost } from './planner.ts'
import { MAX_ADDRS_PER_PEER, MAX_PEERS, REMEMBERED_TTL_MS } from './constants.ts'
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
  /** Newest first. */
  list: () => KnownPeer[]
  upsert: (p: KnownPeer) => void
  /** Keeps the `max` peers seen last and none seen before `cutoff`. */
  prune: (max: number, cutoff: number) => void
  joinAddrs: () => string[]
  addJoinAddrs: (addrs: string[], now: number) => void
  /** True if the address was remembered. */
  forgetJoinAddr: (addr: string) => boolean
}

export interface DiscoveryComponents {
  node: MeshNode
  membership: Membership
  peers: PeerMemory
  metrics: {
    dials: { inc: (labels: { result: string }) => void }
    /** Addresses the dials may try (each one TCP connect): what the dial budget counts. */
    dialAddresses: { inc: (n: number) => void }
    /** Targets the address book holds, by source. */
    bookEntries: { set: (labels: { source: string }, v: number) => void }
    peersRefused: { inc: (labels: { reason: string }) => void }
    peersConnected: { set: (v: number) => void }
  }
  log: { info: (o: object, msg: string) => void, warn: (o: object, msg: string) => void, debug: (o: object, msg: string) => void }
}

/** One address of `meshd join`: joined, or why not (`refused: 'swarm_key'` when the connection was made but the private network refused it). */
export interface JoinResult { addr: string, ok: boolean, peer?: string, error?: string, refused?: 'swarm_key' }

/** A join or bootstrap address as `meshd join --list` shows it. */
export interface JoinAddrState {
  addr: string
  source: 'join' | 'bootstrap'
  /** Connected to the peer at this address now (or, for an address without /p2p/, to any member). */
  connected: boolean
  /** Failed dials in a row. */
  failures: number
  /** When it is dialled next (ms since the epoch), while it is not connected. */
  nextDialAt: number | null
}

/** `meshd join --forget`: what became of the address. */
export type ForgetResult = 'forgotten' | 'bootstrap' | 'unknown'

const PERSIST_EVERY_MS = 15_000

export class Discovery implements Startable {
  private readonly init: DiscoveryInit
  private readonly c: DiscoveryComponents
  private readonly protocol: string
  private readonly now: () => number
  private readonly book: AddressBook
  private readonly planner: DialPlanner
  private readonly refused = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private persistTimer: NodeJS.Timeout | undefined
  private stopped = false
  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => { void this.handleIdentify(evt.detail) }
  private readonly onMember = (m: Member): void => {
    const before = this.book.get(m.id)?.addrs
    this.book.member(m.id, m.heartbeat.addrs, this.now())
    const after = this.book.get(m.id)?.addrs
    if (after !== undefined && after !== before) this.learn(m.id, after)
  }
  private readonly onJoin = (m: Member): void => {
    this.onMember(m)
    if (m.connected) this.remember(m)
  }
  private readonly onForget = (id: string): void => {
    if (this.book.memberGone(id)) this.dropFromPeerStore(id)
  }
  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.book.connected(evt.detail.toString())
    this.onConnectionChange()
  }
  private readonly onConnectionChange = (): void => { this.c.metrics.peersConnected.set(this.c.node.getPeers().length) }

  constructor (init: DiscoveryInit, components: DiscoveryComponents) {
    this.init = init
    this.c = components
    this.protocol = syncProtocol(init.cluster)
    this.now = init.now ?? Date.now
    this.book = new AddressBook()
    this.planner = new DialPlanner(this.book, this.now())
  }

  async start (): Promise<void> {
    await this.c.node.handle(this.protocol, (stream) => this.answerSync(stream), { maxInboundStreams: 64 })
    this.c.node.addEventListener('peer:identify', this.onIdentify)
    this.c.node.addEventListener('peer:connect', this.onConnect)
    this.c.node.addEventListener('peer:disconnect', this.onConnectionChange)
    this.c.membership.on('member:join', this.onJoin)
    this.c.membership.on('member:update', this.onMember)
    this.c.membership.on('member:forget', this.onForget)
    const now = this.now()
    for (const a of this.init.bootstrap) this.book.addOperator(a, 'bootstrap', now)
    for (const a of this.c.peers.joinAddrs()) this.book.addOperator(a, 'join', now)
    // Newest first: when the cache holds more than the book takes, the peers seen last win.
    for (const p of this.c.peers.list()) {
      if (p.id === this.c.membership.selfId || now - p.lastSeen > REMEMBERED_TTL_MS) continue
      if (this.book.peerCount >= MAX_PEERS) break
      this.book.remember(p.id, p.addrs, now)
    }
    this.tick()
    this.timer = setInterval(() => { this.tick() }, Math.max(100, Math.round(this.init.heartbeatMs / 2)))
    this.persistTimer = setInterval(() => { this.persistAll() }, PERSIST_EVERY_MS)
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    clearInterval(this.persistTimer)
    this.persistAll()
    this.c.node.removeEventListener('peer:identify', this.onIdentify)
    this.c.node.removeEventListener('peer:connect', this.onConnect)
    this.c.node.removeEventListener('peer:disconnect', this.onConnectionChange)
    this.c.membership.off('member:join', this.onJoin)
    this.c.membership.off('member:update', this.onMember)
    this.c.membership.off('member:forget', this.onForget)
  }

  /**
   * `meshd join`: dial these addresses now and remember them across restarts.
   * Resolves when each dial succeeded or failed. The operator's own request:
   * not charged to the dial budget.
   */
  async join (addrs: string[]): Promise<JoinResult[]> {
    const now = this.now()
    this.c.peers.addJoinAddrs(addrs, now)
    for (const a of addrs) this.book.addOperator(a, 'join', now)
    return Promise.all(addrs.map(async (addr): Promise<JoinResult> => {
      try {
        const conn = await this.c.node.dial(multiaddr(addr), { signal: AbortSignal.timeout(this.init.dialTimeoutMs ?? 5000) })
        this.book.succeeded(addr)
        return { addr, ok: true, peer: conn.remotePeer.toString() }
      } catch (err) {
        this.book.failed(addr, this.now())
        return { addr, ok: false, error: (err as Error).message, ...(isSwarmKeyMismatch(err) ? { refused: 'swarm_key' as const } : {}) }
      }
    }))
  }

  /** `meshd join --forget`: never dial this join address again, also after a restart. */
  forgetJoin (addr: string): ForgetResult {
    const stored = this.c.peers.forgetJoinAddr(addr)
    const held = this.book.forgetJoin(addr)
    if (stored || held) return 'forgotten'
    return this.init.bootstrap.includes(addr) ? 'bootstrap' : 'unknown'
  }

  /** `meshd join --list`: the join and bootstrap addresses and how dialling them goes. */
  joinList (): JoinAddrState[] {
    const connected = new Set(this.c.node.getPeers().map((p) => p.toString()))
    return this.book.operatorTargets().map((t) => {
      const up = t.peer === null ? connected.size > 0 : connected.has(t.peer)
      return {
        addr: t.key,
        source: t.source === 'bootstrap' ? 'bootstrap' : 'join',
        connected: up,
        failures: t.failures,
        nextDialAt: up ? null : Math.max(t.nextAt, this.now())
      }
    })
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
      // A hint leaves the book when its member is heard (or given up).
      if (peers.every(heard) && this.book.hintsSince(since).every(heard)) return
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

  /**
   * Gives libp2p a member's addresses from its signed heartbeat, so that it
   * can be dialled by id (probe, streams). Replaces, not merges: a member
   * whose addresses change at every heartbeat leaves at most one set behind.
   */
  private learn (id: string, addrs: string[]): void {
    if (id === this.c.membership.selfId || addrs.length === 0) return
    try {
      this.c.node.peerStore.patch(peerIdFromString(id), { multiaddrs: addrs.map((a) => multiaddr(a)) }).catch(() => {})
    } catch {}
  }

  /** The peer cache holds only members this node has been connected to: addresses that worked, of a signed record. */
  private remember (m: Member): void {
    const hb = m.heartbeat
    this.c.peers.upsert({ id: m.id, name: hb.name, addrs: hb.addrs.slice(0, MAX_ADDRS_PER_PEER), source: 'gossip', voter: hb.voter, lastSeen: this.now() })
  }

  private persistAll (): void {
    const now = this.now()
    for (const m of this.c.membership.members()) {
      if (m.id === this.c.membership.selfId || m.state !== 'alive' || !m.connected) continue
      this.remember(m)
    }
    this.c.peers.prune(MAX_PEERS, now - REMEMBERED_TTL_MS)
  }

  /** One pass of the dialer: what the planner allows of what is due. */
  private tick (): void {
    if (this.stopped) return
    const now = this.now()
    const self = this.c.membership.selfId
    const table = this.c.membership.table
    const connected = new Set(this.c.node.getPeers().map((p) => p.toString()))
    for (const t of this.book.expire(now)) this.dropFromPeerStore(t.key)
    const skip = (t: Target): boolean => {
      if (t.peer === null) return connected.size > 0 // an address without /p2p/: dialled until some member answers there
      if (t.peer === self || connected.has(t.peer) || this.isRefused(t.peer, now)) return true
      const m = table.get(t.peer)
      // Join, bootstrap, remembered and hinted peers that are members are dialled as members.
      if (t.source !== 'member') return m !== undefined
      return m === undefined || m.state === 'left'
    }
    const timeout = this.init.dialTimeoutMs ?? 5000
    for (const t of this.planner.next(now, timeout, skip)) {
      const cost = dialCost(t)
      this.c.metrics.dialAddresses.inc(cost)
      this.dial(t, timeout)
        .then(() => {
          this.planner.done(t.key, true, this.now())
          this.c.metrics.dials.inc({ result: 'ok' })
        }, (err: Error) => {
          const dropped = this.planner.done(t.key, false, this.now())
          if (dropped !== null) this.dropFromPeerStore(dropped.key)
          this.c.metrics.dials.inc({ result: 'error' })
          this.c.log.debug({ target: t.key, source: t.source, err: err.message, gaveUp: dropped !== null }, 'dial failed')
        })
    }
    const counts = this.book.counts()
    for (const source of SOURCES) this.c.metrics.bookEntries.set({ source }, counts[source])
  }

  private async dial (t: Target, timeoutMs: number): Promise<unknown> {
    const signal = AbortSignal.timeout(timeoutMs)
    if (t.source === 'join' || t.source === 'bootstrap') return this.c.node.dial(multiaddr(t.key), { signal })
    return this.c.node.dial(t.addrs.map((a) => multiaddr(a)), { signal })
  }

  /** libp2p keeps a record of every peer it dialled: a target given up leaves none behind. */
  private dropFromPeerStore (id: string): void {
    if (this.stopped || this.c.node.getConnections().some((c) => c.remotePeer.toString() === id)) return
    try {
      this.c.node.peerStore.delete(peerIdFromString(id)).catch(() => {})
    } catch {}
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

  /** What we tell others: members as their own heartbeats describe them, never what a third party told us. */
  private addressBook (): SyncMessage {
    const members = this.c.membership.members()
      .filter((m) => m.state !== 'left' && m.state !== 'dead')
      .slice(0, MAX_PEERS)
      .map((m) => ({ id: m.id, addrs: m.heartbeat.addrs.slice(0, MAX_ADDRS_PER_PEER) }))
    return { v: SYNC_VERSION, cluster: this.init.cluster, members }
  }

  /** Another member's address book: at most a few hints (book.ts), however long the book. */
  private absorb (raw: unknown): void {
    const parsed = syncMessageSchema.safeParse(raw)
    if (!parsed.success || parsed.data.cluster !== this.init.cluster) return
    const now = this.now()
    let taken = 0
    for (const m of parsed.data.members) {
      if (!this.book.hasRoomForHint()) break
      if (m.id === this.c.membership.selfId || this.c.membership.table.get(m.id) !== undefined) continue
      if (this.book.hint(m.id, m.addrs, now, isPeerId)) taken++
    }
    if (taken > 0) this.tickSoon()
  }

  private tickScheduled = false
  private tickSoon (): void {
    if (this.tickScheduled) return
    this.tickScheduled = true
    setImmediate(() => { this.tickScheduled = false; this.tick() })
  }
}

function isPeerId (id: string): boolean {
  try {
    peerIdFromString(id)
    return true
  } catch {
    return false
  }
}
