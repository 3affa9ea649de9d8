/**
 * The node's SQLite database (better-sqlite3, WAL): known peers now, the
 * election log and ledger later. WAL with synchronous=NORMAL survives a
 * process crash without losing a committed transaction; FULL is used where a
 * vote or a log entry must survive a power loss too: the election store
 * (mesh/election/storage.ts) switches the connection to it when it opens.
 */
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { MIGRATIONS } from './migrations.ts'

export type Db = Database.Database

/** The database's file in the state dir. */
export const DB_FILE = 'meshd.db'

export function openDb (stateDir: string, file = DB_FILE): Db {
  mkdirSync(stateDir, { recursive: true, mode: 0o750 })
  const db = new Database(join(stateDir, file))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('busy_timeout = 5000')
  db.pragma('foreign_keys = ON')
  migrate(db)
  return db
}

/** Applies the migrations not yet applied, each in its own transaction. */
export function migrate (db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this meshd understands (${MIGRATIONS.length}); upgrade meshd`)
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!)
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
}
