/**
 * Forced recovery, the last resort when a majority of the voters is gone for
 * good (Consul's peers.json, etcd's --force-new-cluster): the survivor
 * rewrites its own durable state so that it is the only voter, then elects
 * itself. It breaks Raft's guarantees on purpose — entries the old group had
 * not committed become committed on the survivor, and the gone voters' logs
 * are disowned — which is why the shell asks for --force and says so loudly.
 *
 * Pure: it computes what to persist; the shell writes it (in one transaction,
 * with a new group id so the old voters' logs can never be merged with the
 * survivor's) and starts a fresh Raft from the result.
 */
import type { Entry, HardState } from './types.ts'

export class RecoveryError extends Error {
  override name = 'RecoveryError'
}

export interface RecoveryPlan {
  /** The hard state to persist: one term past any the old group used here, voted for ourselves. */
  hardState: HardState
  /** A config entry, appended after the whole log, naming `id` as the only voter. */
  entry: Entry & { kind: 'config' }
}

/**
 * The state that makes `id` the only voter. The new config gets a term no
 * leader of the old group gave any entry on this node (hard state term + 1),
 * so (index, term) of the new entry is unique: no other log can hold an
 * entry that looks the same and means something else. Everything before it
 * stays and commits with the survivor's first no-op: the ledger keeps every
 * decision this node knew of.
 */
export function forcedRecovery (id: string, hardState: HardState, log: readonly Entry[]): RecoveryPlan {
  if (id === '') throw new RecoveryError('id must not be empty')
  if (log.length === 0) throw new RecoveryError('this node has never been in a group (empty log): there is nothing to recover')
  const last = log[log.length - 1]!
  if (last.index !== log.length) throw new RecoveryError(`log does not start at index 1 (last entry ${last.index} of ${log.length})`)
  if (last.term > hardState.term) throw new RecoveryError(`log term ${last.term} above hard state term ${hardState.term}`)
  const term = hardState.term + 1
  return {
    hardState: { term, votedFor: id },
    entry: { index: last.index + 1, term, kind: 'config', data: { voters: [id] } }
  }
}
