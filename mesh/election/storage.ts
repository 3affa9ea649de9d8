/**
 * The election's persistent state in SQLite: hard state (term, vote), the
 * log, and the consensus group this node belongs to. Everything a Ready
 * batch asks to persist is written in one transaction before its messages go
 * out, so a vote or an acknowledgement survives a crash as a promise must.
 *
 * A write that fails (a full or failing state disk) is essential: it goes to
 * `onWriteFailed`, which in the daemon logs one fatal line and ends the
 * process, and is thrown on, so that nothing that announces the unwritten
 * state (a vote, an acknowledgement) is sent.
 */
import type Database from 'better-sqlite3'
import type { Entry, HardState } from './raft/index.ts'

/** Called with what could not be written and why; the daemon's stops the process (daemon/store/writes.ts). */
export type WriteFailed = (what: string, err: unknown) => void

export class ElectionStore {
  private readonly db: Database.Database
  private readonly onWriteFailed: WriteFailed
  private readonly getMeta
  private readonly setMeta
  private readonly delMeta
  private readonly insertEntry
  private readonly truncate
  private readonly all

  constructor (db: Database.Database, onWriteFailed: WriteFailed = () => {}) {
    this.db = db
    this.onWriteFailed = onWriteFailed
    // A vote or an acknowledged entry is a promise to other nodes: it must
    // survive a power loss, not only a process crash, so every commit on this
    // connection is fsynced (WAL + FULL). Election writes are rare (term
    // changes and proposals), and the peer table's periodic upserts are cheap.
    db.pragma('synchronous = FULL')
    this.getMeta = db.prepare('SELECT value FROM raft_meta WHERE key = ?')
    this.setMeta = db.prepare('INSERT INTO raft_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
    this.delMeta = db.prepare('DELETE FROM raft_meta WHERE key = ?')
    this.insertEntry = db.prepare('INSERT OR REPLACE INTO raft_log (idx, term, kind, data) VALUES (?, ?, ?, ?)')
    this.truncate = db.prepare('DELETE FROM raft_log WHERE idx >= ?')
    this.all = db.prepare('SELECT idx, term, kind, data FROM raft_log ORDER BY idx')
  }

  hardState (): HardState {
    const term = Number(this.meta('term') ?? '0')
    const voted = this.meta('voted_for')
    return { term, votedFor: voted === undefined || voted === '' ? null : voted }
  }

  group (): string | null {
    return this.meta('group') ?? null
  }

  /**
   * Groups this node's group replaced by a forced recovery (`meshd voters
   * reset --force`): their members yield to it when they return.
   */
  supersedes (): string[] {
    const raw = this.meta('supersedes')
    if (raw === undefined) return []
    const v: unknown = JSON.parse(raw)
    return Array.isArray(v) ? v.filter((g): g is string => typeof g === 'string') : []
  }

  log (): Entry[] {
    return (this.all.all() as Array<{ idx: number, term: number, kind: string, data: string }>).map((r) => ({
      index: r.idx, term: r.term, kind: r.kind, data: JSON.parse(r.data)
    }) as Entry)
  }

  /** Persists what a Ready batch asks, atomically. */
  persist (hard: HardState | undefined, truncateFrom: number | undefined, append: readonly Entry[], group?: string): void {
    this.write('the election\'s hard state and log', () => {
      if (hard !== undefined) {
        this.setMeta.run('term', String(hard.term))
        this.setMeta.run('voted_for', hard.votedFor ?? '')
      }
      if (group !== undefined) this.setMeta.run('group', group)
      if (truncateFrom !== undefined) this.truncate.run(truncateFrom)
      for (const e of append) this.insertEntry.run(e.index, e.term, e.kind, JSON.stringify(e.data))
    })
  }

  /**
   * Forced recovery: the hard state and config entry of a RecoveryPlan, the
   * new group and the groups it supersedes, in one transaction (a crash
   * leaves either the old state or the whole new one).
   */
  recover (hard: HardState, entry: Entry, group: string, supersedes: readonly string[]): void {
    this.write('the election\'s forced recovery', () => {
      this.setMeta.run('term', String(hard.term))
      this.setMeta.run('voted_for', hard.votedFor ?? '')
      this.setMeta.run('group', group)
      this.setMeta.run('supersedes', JSON.stringify(supersedes))
      this.insertEntry.run(entry.index, entry.term, entry.kind, JSON.stringify(entry.data))
    })
  }

  /** Forgets everything (this node yields its group and joins another as a fresh voter). */
  reset (): void {
    this.write('the election\'s reset', () => {
      this.truncate.run(0)
      for (const k of ['term', 'voted_for', 'group', 'supersedes']) this.delMeta.run(k)
    })
  }

  /** One transaction; a failure goes to onWriteFailed, then is thrown on. */
  private write (what: string, body: () => void): void {
    try {
      this.db.transaction(body)()
    } catch (err) {
      this.onWriteFailed(what, err)
      throw err
    }
  }

  private meta (key: string): string | undefined {
    return (this.getMeta.get(key) as { value: string } | undefined)?.value
  }
}
