/**
 * The election and replicated-log core. Pure: no I/O, no clock, no
 * randomness of its own. See raft.ts for how a shell drives it and lease.ts
 * for when a leader may act.
 */
export { Raft, RaftInvariantError, type RaftInit } from './raft.ts'
export { parseMessage, toWire, MessageError, type WireMessage } from './messages.ts'
export { DEFAULT_TIMING, leaseMs, promiseMs, validateTiming, TimingError, type Timing } from './timing.ts'
export { forcedRecovery, RecoveryError, type RecoveryPlan } from './recovery.ts'
export { removalQuorum, type RemovalCheck } from './removal.ts'
export { ELECTION_SCHEMA_VERSION, MAX_ENTRIES_PER_APPEND } from './constants.ts'
export type {
  ConfigChange, ConfigData, Entry, EntryKind, HardState, Message, MessageType, NoLeaderCode,
  ProposeConfigResult, ProposeResult, RaftStatus, Ready, Role
} from './types.ts'
