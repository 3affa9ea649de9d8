/**
 * Opens the node's state (identity key and database) the way `meshd start`
 * must: reads what the state dir holds, lets state-verdict.ts judge it, and
 * refuses (StateError, exit 2), or with `--reset-state` moves what is lost
 * or damaged aside and starts afresh, or opens it as it is. Every database
 * is checked with PRAGMA quick_check first: a damaged one is named, not
 * used.
 */
import Database from 'better-sqlite3'
import { existsSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { DB_FILE, openDb, type Db } from '../store/db.ts'
import { NodeState } from '../store/node-state.ts'
import { createIdentity, loadIdentity, IDENTITY_FILE, type Identity } from '../../mesh/identity.ts'
import { judgeState, type DbFacts } from './state-verdict.ts'

/** The state dir cannot be used as it is (exit 2); the message names the files and the way out. */
export class StateError extends Error {
  readonly exitCode = 2
  readonly key = 'state_dir'
  constructor (message: string) {
    super(message)
    this.name = 'StateError'
  }
}

export interface OpenedState {
  db: Db
  identity: Identity
  /** What --reset-state accepted, or null. */
  reset: string | null
  /** Where the old database went, when it was moved aside. */
  movedAside: string[]
}

export interface OpenStateOptions {
  resetState: boolean
  /** A write the node can do without (store/writes.ts): the recorded peer id. */
  save?: (what: string, write: () => void) => void
  now?: () => number
}

export async function openState (stateDir: string, opts: OpenStateOptions): Promise<OpenedState> {
  const dbPath = join(stateDir, DB_FILE)
  const loaded = loadIdentity(stateDir)
  const verdict = judgeState({
    dbPath,
    identityPath: join(stateDir, IDENTITY_FILE),
    identity: loaded?.peerId.toString() ?? null,
    db: inspectDb(dbPath)
  }, opts.resetState)
  if (verdict.action === 'refuse') throw new StateError(verdict.message)
  let movedAside: string[] = []
  if (verdict.action === 'reset') movedAside = moveAside(dbPath, new Date(opts.now?.() ?? Date.now()))
  // The database first, then the key: a first start that dies in between
  // leaves a database without a recorded peer id, which a restart accepts.
  const db = openDb(stateDir)
  const identity = loaded ?? await createIdentity(stateDir)
  const state = new NodeState(db)
  if (state.peerId() === null) {
    const save = opts.save ?? ((_what: string, write: () => void) => { write() })
    save('the peer id this database belongs to', () => { state.set('peer_id', identity.peerId.toString()) })
  }
  return { db, identity, reset: verdict.action === 'reset' ? verdict.warning : null, movedAside }
}

/** SQLite's codes for a file that is not a database, or a damaged one. */
const DAMAGE = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT'])

/** What the database file holds: nothing, no schema, damage (quick_check), or a whole meshd database. */
export function inspectDb (path: string): DbFacts {
  if (!existsSync(path)) return { kind: 'missing' }
  let db: Database.Database | undefined
  try {
    db = new Database(path, { fileMustExist: true })
    const problems = (db.pragma('quick_check(5)') as Array<{ quick_check: string }>).map((r) => r.quick_check).filter((r) => r !== 'ok')
    if (problems.length > 0) return { kind: 'corrupt', detail: `PRAGMA quick_check: ${problems.join('; ')}` }
    const version = db.pragma('user_version', { simple: true }) as number
    if (version === 0) {
      const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n
      return tables === 0 ? { kind: 'empty' } : { kind: 'corrupt', detail: `${tables} table(s) but no meshd schema version: not a meshd database` }
    }
    const get = (sql: string, key: string): string | undefined => (db!.prepare(sql).get(key) as { value: string } | undefined)?.value
    const peerId = get('SELECT value FROM node_state WHERE key = ?', 'peer_id') ?? null
    const election = version >= 2 && (get('SELECT value FROM raft_meta WHERE key = ?', 'group') !== undefined || Number(get('SELECT value FROM raft_meta WHERE key = ?', 'term') ?? '0') > 0)
    return { kind: 'whole', peerId, election }
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? '')
    if (DAMAGE.has(code) || code.startsWith('SQLITE_CORRUPT')) return { kind: 'corrupt', detail: `${code}: ${(err as Error).message}` }
    throw err
  } finally {
    db?.close()
  }
}

/** Renames the database and its -wal/-shm to `<name>.reset-<time>`; returns the new names. */
function moveAside (dbPath: string, at: Date): string[] {
  const stamp = at.toISOString().replace(/[-:.]/g, '') // 20261126T175000675Z
  const moved: string[] = []
  for (const suffix of ['', '-wal', '-shm']) {
    const from = dbPath + suffix
    if (!existsSync(from)) continue
    const to = `${dbPath}.reset-${stamp}${suffix}`
    renameSync(from, to)
    moved.push(to)
  }
  return moved
}

/**
 * `meshd init`: a new node's identity key and database, made together (so
 * that `meshd start` finds them whole); an existing identity is kept, and
 * its database left for start to judge. Refuses (StateError) to make a new
 * key beside a database that belongs to another peer id or is damaged.
 */
export async function initState (stateDir: string): Promise<{ identity: Identity, created: boolean }> {
  const loaded = loadIdentity(stateDir)
  if (loaded !== null) return { identity: loaded, created: false }
  const dbPath = join(stateDir, DB_FILE)
  const verdict = judgeState({ dbPath, identityPath: join(stateDir, IDENTITY_FILE), identity: null, db: inspectDb(dbPath) }, false)
  if (verdict.action === 'refuse') throw new StateError(verdict.message)
  const db = openDb(stateDir)
  try {
    const identity = await createIdentity(stateDir)
    new NodeState(db).set('peer_id', identity.peerId.toString())
    return { identity, created: true }
  } finally {
    db.close()
  }
}
