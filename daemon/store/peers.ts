/**
 * Known peers and join addresses, persisted so that a node restarted from its
 * state dir dials the mesh again without being told where.
 */
import type { Db } from './db.ts'

import type { KnownPeer, PeerMemory } from '../../mesh/discovery/service.ts'
export type { KnownPeer }

export class PeerStore {
  private readonly upsertStmt
  private readonly listStmt
  private readonly addJoinStmt
  private readonly listJoinStmt
  private readonly forgetStmt
  private readonly keepNewestStmt
  private readonly forgetJoinStmt

  constructor (db: Db) {
    this.upsertStmt = db.prepare(`INSERT INTO peers (id, name, addrs, source, voter, last_seen)
      VALUES (@id, @name, @addrs, @source, @voter, @lastSeen)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, addrs = excluded.addrs,
        voter = excluded.voter, last_seen = max(peers.last_seen, excluded.last_seen)`)
    this.listStmt = db.prepare('SELECT id, name, addrs, source, voter, last_seen AS lastSeen FROM peers ORDER BY last_seen DESC')
    this.addJoinStmt = db.prepare('INSERT OR IGNORE INTO join_addrs (addr, added_at) VALUES (?, ?)')
    this.listJoinStmt = db.prepare('SELECT addr FROM join_addrs ORDER BY added_at')
    this.forgetStmt = db.prepare('DELETE FROM peers WHERE last_seen < ?')
    this.keepNewestStmt = db.prepare('DELETE FROM peers WHERE id NOT IN (SELECT id FROM peers ORDER BY last_seen DESC LIMIT ?)')
    this.forgetJoinStmt = db.prepare('DELETE FROM join_addrs WHERE addr = ?')
  }

  upsert (p: KnownPeer): void {
    this.upsertStmt.run({ ...p, addrs: JSON.stringify(p.addrs), voter: p.voter ? 1 : 0 })
  }

  list (): KnownPeer[] {
    return (this.listStmt.all() as Array<Omit<KnownPeer, 'addrs' | 'voter'> & { addrs: string, voter: number }>)
      .map((r) => ({ ...r, addrs: JSON.parse(r.addrs) as string[], voter: r.voter === 1 }))
  }

  /** `meshd join` addresses are remembered across restarts (INTERFACE.md). */
  addJoinAddrs (addrs: string[], now: number): void {
    for (const a of addrs) this.addJoinStmt.run(a, now)
  }

  joinAddrs (): string[] {
    return (this.listJoinStmt.all() as Array<{ addr: string }>).map((r) => r.addr)
  }

  /** `meshd join --forget`: true if the address was remembered. */
  forgetJoinAddr (addr: string): boolean {
    return this.forgetJoinStmt.run(addr).changes > 0
  }

  forgetOlderThan (cutoff: number): number {
    return this.forgetStmt.run(cutoff).changes
  }

  /** Bounds the peer cache: the `max` peers seen last, none seen before `cutoff`. */
  prune (max: number, cutoff: number): void {
    this.forgetOlderThan(cutoff)
    this.keepNewestStmt.run(max)
  }
}

/** What `meshd join` names when its addresses could not be saved (daemon.ts looks for it). */
export const JOIN_ADDRS_WRITE = 'the join addresses'

/**
 * The peer store as discovery uses it, with its writes non-essential
 * (store/writes.ts): a full state disk costs the memory of peers across a
 * restart, logged, never the running node. Reads are left as they are.
 */
export function nonEssentialPeers (store: PeerStore, save: (what: string, write: () => void) => void): PeerMemory {
  return {
    list: () => store.list(),
    joinAddrs: () => store.joinAddrs(),
    upsert: (p) => { save('the peer cache', () => { store.upsert(p) }) },
    prune: (max, cutoff) => { save('the peer cache', () => { store.prune(max, cutoff) }) },
    addJoinAddrs: (addrs, now) => { save(JOIN_ADDRS_WRITE, () => { store.addJoinAddrs(addrs, now) }) },
    // Asked for by an operator (`meshd join --forget`): a failure goes back to
    // the command, which must not say the address is gone when it is not.
    forgetJoinAddr: (addr) => store.forgetJoinAddr(addr)
  }
}
