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

  constructor (db: Db) {
    this.upsertStmt = db.prepare(`INSERT INTO peers (id, name, addrs, source, voter, last_seen)
      VALUES (@id, @name, @addrs, @source, @voter, @lastSeen)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, addrs = excluded.addrs,
        voter = excluded.voter, last_seen = max(peers.last_seen, excluded.last_seen)`)
    this.listStmt = db.prepare('SELECT id, name, addrs, source, voter, last_seen AS lastSeen FROM peers ORDER BY last_seen DESC')
    this.addJoinStmt = db.prepare('INSERT OR IGNORE INTO join_addrs (addr, added_at) VALUES (?, ?)')
    this.listJoinStmt = db.prepare('SELECT addr FROM join_addrs ORDER BY added_at')
    this.forgetStmt = db.prepare('DELETE FROM peers WHERE last_seen < ?')
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

  forgetOlderThan (cutoff: number): number {
    return this.forgetStmt.run(cutoff).changes
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
    addJoinAddrs: (addrs, now) => { save(JOIN_ADDRS_WRITE, () => { store.addJoinAddrs(addrs, now) }) }
  }
}
