/**
 * The address book: every target discovery may dial, where each came from,
 * and how its dials went. Pure — every method takes `now` — so the rules
 * about what is remembered, for how long, and when a target is given up are
 * tested with a fake clock (test/mesh/discovery-book.test.ts).
 *
 * What is believed, by source (constants.ts has the numbers):
 * - join / bootstrap: the operator's addresses; never given up, backed off
 *   to a minute; `meshd join --forget` removes a join address.
 * - member: a member's addresses from its own signed heartbeat (gossipsub's
 *   StrictSign, checked against the heartbeat's id by membership). Replaces
 *   whatever a third party said about that peer; dropped when membership
 *   forgets the member.
 * - remembered: peers of a previous run (the peer cache, which holds only
 *   members this node was connected to); given up after a run of failures.
 * - hint: a member named by another member's address book and not yet
 *   heard. A third party's claim: few, short-lived, tried twice at most, and
 *   never taken in place of anything else.
 * Peers (member, remembered, hint) are capped at MAX_PEERS together and each
 * at MAX_ADDRS_PER_PEER addresses.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { backoffDelay } from '../backoff.ts'
import * as K from './constants.ts'

export type TargetSource = 'join' | 'bootstrap' | 'member' | 'remembered' | 'hint'

/** Dial priority: the operator's addresses first, hints last. */
export const SOURCES: readonly TargetSource[] = ['join', 'bootstrap', 'member', 'remembered', 'hint']
const RANK: Record<TargetSource, number> = { join: 0, bootstrap: 1, member: 2, remembered: 3, hint: 4 }

export interface Target {
  /** The peer id; for a join or bootstrap address, the address itself. */
  key: string
  source: TargetSource
  /** The peer id, when known (a join address without /p2p/ has none). */
  peer: string | null
  /** What a dial tries, each ending in /p2p/<peer> when the peer is known. */
  addrs: string[]
  /** Failed dials in a row. */
  failures: number
  /** Not dialled before this time (back-off, or a dial in flight). */
  nextAt: number
  addedAt: number
  /** The addresses as last given, before cleaning: a heartbeat that repeats them costs nothing. */
  raw?: string
}

export interface BookLimits {
  maxAddrsPerPeer: number
  maxPeers: number
  maxHints: number
  hintTtlMs: number
  hintMaxFailures: number
  hintTombstoneMs: number
  maxTombstones: number
  rememberedMaxFailures: number
}

export const DEFAULT_LIMITS: BookLimits = {
  maxAddrsPerPeer: K.MAX_ADDRS_PER_PEER,
  maxPeers: K.MAX_PEERS,
  maxHints: K.MAX_HINTS,
  hintTtlMs: K.HINT_TTL_MS,
  hintMaxFailures: K.HINT_MAX_FAILURES,
  hintTombstoneMs: K.HINT_TOMBSTONE_MS,
  maxTombstones: K.MAX_TOMBSTONES,
  rememberedMaxFailures: K.REMEMBERED_MAX_FAILURES
}

export class AddressBook {
  readonly limits: BookLimits
  private readonly random: () => number
  /** member, remembered and hint targets, by peer id. */
  private readonly peers = new Map<string, Target>()
  /** join and bootstrap targets, by address. */
  private readonly operator = new Map<string, Target>()
  /** Hints given up, by peer id: not taken again until then. Insertion order is age order. */
  private readonly tombstones = new Map<string, number>()
  private hintCount = 0

  constructor (limits: Partial<BookLimits> = {}, random: () => number = Math.random) {
    this.limits = { ...DEFAULT_LIMITS, ...limits }
    this.random = random
  }

  get (key: string): Target | undefined {
    return this.peers.get(key) ?? this.operator.get(key)
  }

  /** Peers held (member, remembered, hint); join and bootstrap addresses are not counted. */
  get peerCount (): number {
    return this.peers.size
  }

  counts (): Record<TargetSource, number> {
    const out: Record<TargetSource, number> = { join: 0, bootstrap: 0, member: 0, remembered: 0, hint: 0 }
    for (const t of this.peers.values()) out[t.source]++
    for (const t of this.operator.values()) out[t.source]++
    return out
  }

  /** Join and bootstrap targets, in the order they were added. */
  operatorTargets (): Target[] {
    return [...this.operator.values()]
  }

  /** An address from mesh.bootstrap or `meshd join`. A bootstrap address stays one (config owns it). */
  addOperator (addr: string, source: 'join' | 'bootstrap', now: number): void {
    if (this.operator.has(addr)) return
    this.operator.set(addr, { key: addr, source, peer: peerIdOf(addr), addrs: [addr], failures: 0, nextAt: 0, addedAt: now })
  }

  /** `meshd join --forget`: true if it was a join address (bootstrap ones belong to the config). */
  forgetJoin (addr: string): boolean {
    if (this.operator.get(addr)?.source !== 'join') return false
    this.operator.delete(addr)
    return true
  }

  /**
   * A member's own signed heartbeat: its addresses replace any other claim
   * about it. When the book is full, a hint or a failing peer makes room;
   * false when nothing could (the member is then not dialled by this node).
   */
  member (id: string, addrs: readonly string[], now: number): boolean {
    const existing = this.peers.get(id)
    const raw = addrs.join('\n')
    if (existing?.source === 'member' && existing.raw === raw) return true
    const clean = cleanAddrs(id, addrs, this.limits.maxAddrsPerPeer)
    if (existing !== undefined) {
      if (existing.source === 'hint') this.hintCount--
      if (existing.source !== 'member') { existing.failures = 0; existing.nextAt = Math.min(existing.nextAt, now) }
      existing.source = 'member'
      existing.addrs = clean
      existing.raw = raw
      return true
    }
    this.tombstones.delete(id)
    if (clean.length === 0) return false
    if (this.peers.size >= this.limits.maxPeers && !this.evictOne()) return false
    this.peers.set(id, { key: id, source: 'member', peer: id, addrs: clean, failures: 0, nextAt: now, addedAt: now, raw })
    return true
  }

  /** Membership forgot the member (or it left): nothing more to dial. */
  memberGone (id: string): boolean {
    const t = this.peers.get(id)
    if (t?.source !== 'member') return false
    this.peers.delete(id)
    return true
  }

  /** A peer from the peer cache, at start. Never displaces anything. */
  remember (id: string, addrs: readonly string[], now: number): boolean {
    if (this.peers.has(id) || this.peers.size >= this.limits.maxPeers) return false
    const clean = cleanAddrs(id, addrs, this.limits.maxAddrsPerPeer)
    if (clean.length === 0) return false
    this.peers.set(id, { key: id, source: 'remembered', peer: id, addrs: clean, failures: 0, nextAt: now, addedAt: now })
    return true
  }

  /** Whether a hint could be taken now (lets a caller stop reading a long book early). */
  hasRoomForHint (): boolean {
    return this.hintCount < this.limits.maxHints && this.peers.size < this.limits.maxPeers
  }

  /**
   * A member named by another member's address book. Taken only into free
   * room; never refreshes an entry. `valid` (e.g. a peer id parse) runs only
   * once the cheap checks passed, so a long book of refused ids costs little.
   */
  hint (id: string, addrs: readonly string[], now: number, valid: (id: string) => boolean = () => true): boolean {
    if (this.peers.has(id) || !this.hasRoomForHint()) return false
    const until = this.tombstones.get(id)
    if (until !== undefined) {
      if (now < until) return false
      this.tombstones.delete(id)
    }
    if (!valid(id)) return false
    const clean = cleanAddrs(id, addrs, this.limits.maxAddrsPerPeer)
    if (clean.length === 0) return false
    this.peers.set(id, { key: id, source: 'hint', peer: id, addrs: clean, failures: 0, nextAt: now, addedAt: now })
    this.hintCount++
    return true
  }

  /** Hints taken at or after `since` and not yet heard (a heard one became a member). */
  hintsSince (since: number): string[] {
    const out: string[] = []
    for (const t of this.peers.values()) if (t.source === 'hint' && t.addedAt >= since) out.push(t.key)
    return out
  }

  /** A dial starts: not started again before it can have timed out. */
  attempting (key: string, now: number, timeoutMs: number): void {
    const t = this.get(key)
    if (t !== undefined) t.nextAt = now + timeoutMs
  }

  /** A dial succeeded. */
  succeeded (key: string): void {
    const t = this.get(key)
    if (t !== undefined) { t.failures = 0; t.nextAt = 0 }
  }

  /** A connection to `peer` exists (dialled by anyone): its back-off starts again from nothing. */
  connected (peer: string): void {
    this.succeeded(peer)
    for (const t of this.operator.values()) if (t.peer === peer) { t.failures = 0; t.nextAt = 0 }
  }

  /** A dial failed: backs off, or gives the target up (returned) when its source allows no more. */
  failed (key: string, now: number): Target | null {
    const t = this.get(key)
    if (t === undefined) return null
    t.failures++
    if ((t.source === 'hint' && t.failures >= this.limits.hintMaxFailures) ||
        (t.source === 'remembered' && t.failures >= this.limits.rememberedMaxFailures)) {
      this.drop(t, now)
      return t
    }
    t.nextAt = now + backoffDelay(K.CURVES[t.source], t.failures, this.random)
    return null
  }

  /** Drops hints past their time and old tombstones; returns what was dropped. */
  expire (now: number): Target[] {
    const dropped: Target[] = []
    for (const t of this.peers.values()) {
      if (t.source === 'hint' && now - t.addedAt >= this.limits.hintTtlMs) dropped.push(t)
    }
    for (const t of dropped) this.drop(t, now)
    for (const [id, until] of this.tombstones) if (now >= until) this.tombstones.delete(id)
    return dropped
  }

  /** Targets whose back-off is over and that `skip` does not rule out, best first (source, then longest waiting). */
  due (now: number, skip: (t: Target) => boolean): Target[] {
    const out: Target[] = []
    for (const t of this.operator.values()) if (t.nextAt <= now && !skip(t)) out.push(t)
    for (const t of this.peers.values()) if (t.nextAt <= now && t.addrs.length > 0 && !skip(t)) out.push(t)
    return out.sort((a, b) => RANK[a.source] - RANK[b.source] || a.nextAt - b.nextAt)
  }

  private drop (t: Target, now: number): void {
    if (this.peers.get(t.key) !== t) return
    this.peers.delete(t.key)
    if (t.source !== 'hint') return
    this.hintCount--
    if (this.tombstones.size >= this.limits.maxTombstones) {
      const oldest = this.tombstones.keys().next()
      if (oldest.done !== true) this.tombstones.delete(oldest.value)
    }
    this.tombstones.set(t.key, now + this.limits.hintTombstoneMs)
  }

  /** Room for a member: a hint, else the peer with the most failures (never one that is not failing). */
  private evictOne (): boolean {
    let victim: Target | undefined
    for (const t of this.peers.values()) {
      if (t.source === 'hint') { victim = t; break }
      if (t.failures > 0 && (victim === undefined || t.failures > victim.failures)) victim = t
    }
    if (victim === undefined) return false
    this.peers.delete(victim.key)
    if (victim.source === 'hint') this.hintCount--
    return true
  }
}

/**
 * The addresses worth dialling for `peer`, at most `max`: parseable
 * multiaddrs whose /p2p/ part, if any, names this peer (one member cannot
 * point others at a third), each ending in /p2p/<peer>, without duplicates.
 */
export function cleanAddrs (peer: string, addrs: readonly string[], max: number): string[] {
  const out = new Set<string>()
  for (const a of addrs) {
    if (out.size >= max) break
    if (typeof a !== 'string' || a.length === 0 || a.length > 256) continue
    const ids = [...a.matchAll(/\/p2p\/([^/]+)/g)].map((m) => m[1])
    if (ids.some((id) => id !== peer) || a.includes('/p2p-circuit')) continue
    const full = ids.length === 0 ? `${a}/p2p/${peer}` : a
    try {
      multiaddr(full)
    } catch {
      continue
    }
    out.add(full)
  }
  return [...out]
}

/** The peer id in an address's /p2p/ part, or null. */
export function peerIdOf (addr: string): string | null {
  const m = /\/p2p\/([^/]+)/.exec(addr)
  return m === null ? null : m[1]!
}
