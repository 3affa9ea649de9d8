/**
 * Whether `meshd start` may open the state dir as it finds it. Pure: the
 * facts are read by state.ts. The identity key and the database are made
 * together (on a node's first start, or by `meshd init`), so finding one
 * without the other, or a database that belongs to another peer id, means
 * state was lost. Starting anyway would do so silently and badly: a node
 * that lost its database starts as a fresh one (a new group when alone, its
 * join addresses and known peers forgotten), and one that lost its identity
 * key comes back under a new peer id, a voter that is `not_a_voter` forever.
 * So start refuses, naming the files and what happened, unless the operator
 * accepts the loss with `--reset-state`.
 */

export type DbFacts =
  | { kind: 'missing' }
  /** A file without meshd's schema: 0 bytes, or never migrated. */
  | { kind: 'empty' }
  /** Unreadable as SQLite, or PRAGMA quick_check found damage. */
  | { kind: 'corrupt', detail: string }
  | {
    kind: 'whole'
    /** The peer id recorded in it; null in a database from before meshd recorded it. */
    peerId: string | null
    /** It holds election state (a group or a term): it was a voter's. */
    election: boolean
  }

export interface StateFacts {
  dbPath: string
  identityPath: string
  /** The peer id of the identity key, null when there is none. */
  identity: string | null
  db: DbFacts
}

export type StateVerdict =
  /** Open the state as it is (also a first start: neither file exists). */
  | { action: 'open' }
  /** Refuse to start (exit 2) with this one-line message. */
  | { action: 'refuse', message: string }
  /**
   * `--reset-state` accepted a loss: say what (a warning), move whatever is
   * left of the database aside (kept for a post-mortem, not deleted: a stale
   * `-wal` beside a new file would be replayed into it), then open afresh.
   */
  | { action: 'reset', warning: string }

const RESET = '`meshd start --reset-state`'

export function judgeState (f: StateFacts, resetState: boolean): StateVerdict {
  const problem = describeProblem(f)
  if (problem === null) return { action: 'open' }
  if (!resetState) return { action: 'refuse', message: `${problem.what}. ${problem.fix}` }
  return { action: 'reset', warning: `${problem.what}; --reset-state given: ${problem.reset}` }
}

interface Problem { what: string, fix: string, reset: string }

function describeProblem (f: StateFacts): Problem | null {
  const { db, dbPath, identityPath } = f
  if (db.kind === 'corrupt') {
    return {
      what: `${dbPath} is damaged (${db.detail}): this node's state (election log, known peers, join addresses) cannot be trusted`,
      fix: `Restore it from a backup, or run ${RESET} to move it aside and start with a fresh state${f.identity !== null ? ' under the same peer id' : ''}`,
      reset: `moved it aside and starting with a fresh state${f.identity !== null ? ` under the same peer id ${f.identity}` : ''}`
    }
  }
  if (f.identity !== null && (db.kind === 'missing' || db.kind === 'empty')) {
    return {
      what: `${dbPath} is ${db.kind === 'missing' ? 'missing' : 'empty'} but ${identityPath} exists (peer id ${f.identity}): this node's state was lost, and it would start as a fresh node (a new group when alone, its join addresses and known peers forgotten)`,
      fix: `Restore ${dbPath} from a backup, or run ${RESET} to start with a fresh state under the same peer id (then \`meshd join\` it again if the config has no mesh.bootstrap)`,
      reset: `starting with a fresh state under the same peer id ${f.identity}`
    }
  }
  if (db.kind !== 'whole') return null // neither file, or an empty database and no key: a first start
  if (f.identity === null && (db.peerId !== null || db.election)) {
    return {
      what: `${identityPath} is missing but ${dbPath} holds the state of ${db.peerId !== null ? `peer ${db.peerId}` : 'a voter'}: with a new key this node would come back under a new peer id, and a voter the mesh no longer counts`,
      fix: `Restore ${identityPath} from a backup, or run ${RESET} to start as a new node (a new peer id; its database is moved aside)`,
      reset: 'moved the database aside and starting as a new node with a new peer id (remove the old peer id from the voters with `meshd voters remove` if it was a voter)'
    }
  }
  if (f.identity !== null && db.peerId !== null && db.peerId !== f.identity) {
    return {
      what: `${identityPath} (peer id ${f.identity}) is not the identity ${dbPath} belongs to (peer id ${db.peerId}): the key or the database was copied from another node`,
      fix: `Put back this node's own identity key or database, or run ${RESET} to keep the key and start with a fresh state (the database is moved aside)`,
      reset: `moved the database aside and starting with a fresh state under peer id ${f.identity}`
    }
  }
  return null
}
