/** Small key/value facts about this node that must survive restarts. */
import type { Db } from './db.ts'

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
   * The incarnation number of this run: one more than the last. Heartbeats are
   * ordered by (incarnation, seq), so a restarted node's first heartbeat wins
   * over anything its previous life sent, even though seq starts again at 0.
   */
  nextIncarnation (): number {
    const next = Number(this.get('incarnation') ?? '0') + 1
    this.set('incarnation', String(next))
    return next
  }
}
