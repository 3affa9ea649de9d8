/** Small key/value facts about this node that must survive restarts. */
import type { Db } from './db.ts'
import { nextIncarnation } from '../../mesh/membership/incarnation.ts'

export class NodeState {
  private readonly getStmt
  private readonly setStmt

  constructor (db: Db) {
    this.getStmt = db.prepare('SELECT value FROM node_state WHERE key = ?')
    this.setStmt = db.prepare('INSERT INTO node_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
  }

  get (key: string): string | undefined {
    return (this.getStmt.get(key) as { value: string } | undefined)?.value
  }

  set (key: string, value: string): void {
    this.setStmt.run(key, value)
  }

  /**
   * The incarnation of this run (mesh/membership/incarnation.ts: above the
   * last one stored, and at least the wall clock in ms, so that a node whose
   * database was lost still outranks its earlier runs). Storing it is not
   * essential (`save`, which may fail on a full disk and go on): the clock
   * floor holds without it.
   */
  nextIncarnation (now: number, save: (write: () => void) => void = (w) => { w() }): number {
    const raw = this.get('incarnation')
    const next = nextIncarnation(raw === undefined ? undefined : Number(raw), now)
    save(() => { this.set('incarnation', String(next)) })
    return next
  }

  /** The peer id this database belongs to (recorded at start; null in a database from before it was recorded). */
  peerId (): string | null {
    return this.get('peer_id') ?? null
  }
}
