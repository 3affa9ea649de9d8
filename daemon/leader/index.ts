/**
 * The leader's pure core, plan/ (decide() and what it is made of) and ledger/
 * (the replicated state), as one import for the shell beside it (service,
 * launcher, ledger replica, coordination). See README.md beside this file.
 */
export { decide, type BudgetSummary, type DecideInput, type DecideResult } from './plan/decide.ts'
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
} from './ledger/ledger.ts'
export { parseEntry, entrySchema, LEDGER_VERSION, type LedgerEntry, type ParsedEntry } from './ledger/entries.ts'
export { spend, costBetween, dayStartUtc, monthStartUtc, type Spend } from './ledger/spend.ts'
export { fit, shed, limitsOf, refusal, describeLimit, type Fit, type Limit, type Limits, type Held, type Candidate, type Kept, type Shed } from './plan/budget.ts'
export { rank, tier, type PlacementContext, type Want, type Choice, type Ranking } from './plan/placement.ts'
export { allocate, type Allocation, type Slot } from './plan/allocate.ts'
export { autoscale, type AutoDecision, type AutoInput } from './plan/autoscale.ts'
export { newMemory, memoryFor, type LeaderMemory } from './plan/memory.ts'
export { observeMember } from './plan/observe.ts'
export { createdOutcomes, launchedOutcome, launchFailedOutcome, terminateOutcome, errorCode, ERROR_CODES } from './plan/outcomes.ts'
export { launchRequest, nodeName } from './plan/launch-request.ts'
export { policyFromConfig, providerPolicy, LEADER_TIMINGS } from './plan/policy.ts'
export type * from './plan/types.ts'
