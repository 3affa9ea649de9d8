/**
 * Schema migrations, applied in order; PRAGMA user_version counts how many
 * ran. Append only: a released migration is never edited.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: peers this node has known, so a restarted node rejoins without `join`.
  `CREATE TABLE peers (
     id TEXT PRIMARY KEY,
     name TEXT,
     addrs TEXT NOT NULL DEFAULT '[]',
     source TEXT NOT NULL,
     voter INTEGER NOT NULL DEFAULT 0,
     last_seen INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE join_addrs (
     addr TEXT PRIMARY KEY,
     added_at INTEGER NOT NULL
   );
   CREATE TABLE node_state (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL
   );`,
  // 2: the election's persistent state and log (Raft: term, vote, entries).
  `CREATE TABLE raft_meta (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL
   );
   CREATE TABLE raft_log (
     idx INTEGER PRIMARY KEY,
     term INTEGER NOT NULL,
     kind TEXT NOT NULL,
     data TEXT NOT NULL
   );`
]
