/**
 * The leader's pure core: decide() and what it is made of. The I/O shell
 * (launcher, Raft integration, CLI) imports from here. See README.md beside
 * this file for how to drive it.
 */
export { decide, type BudgetSummary, type DecideResult } from './decide.ts'
export {
  apply,
  applyChecked,
  answerFor,
  byState,
  capacityRefused,
  committedPerHour,
  emptyLedger,
  getRecord,
  isFinished,
  isLive,
  liveRecords,
  mayBill,
  projectedPerHour,
  rebuild,
  records,
  type Applied,
  type DecisionRecord,
  type InstanceRecord,
  type LedgerState,
  type RecordState
} from './ledger.ts'
export { parseEntry, entrySchema, LEDGER_VERSION, type LedgerEntry, type ParsedEntry } from './entries.ts'
export { spend, costBetween, dayStartUtc, monthStartUtc, type Spend } from './spend.ts'
export { fit, shed, limitsOf, refusal, describeLimit, type Fit, type Limit, type Limits, type Held, type Candidate, type Kept, type Shed } from './budget.ts'
export { rank, tier, type PlacementContext, type Want, type Choice, type Ranking } from './placement.ts'
export { allocate, type Allocation, type Slot } from './allocate.ts'
export { autoscale, type AutoDecision, type AutoInput } from './autoscale.ts'
export { newMemory, memoryFor, type LeaderMemory } from './memory.ts'
export { observeMember } from './observe.ts'
export { createdOutcomes, launchedOutcome, launchFailedOutcome, terminateOutcome, errorCode } from './outcomes.ts'
export { launchRequest, nodeName } from './launch-request.ts'
export { policyFromConfig, providerPolicy, DEFAULT_BURST, DEFAULT_SERVICE, LEADER_TIMINGS } from './policy.ts'
export type * from './types.ts'
