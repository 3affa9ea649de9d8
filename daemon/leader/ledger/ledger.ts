/**
 * The ledger: every decision and every burst instance, as a pure reducer over
 * the entries of entries.ts. Every node applies the committed Raft log with
 * `apply`, so a new leader holds exactly the state the old one committed and
 * resumes from it.
 *
 * Nothing here reads a clock: time comes from the entries' `at` (and from
 * `now` in the queries). The state is plain JSON, so a Raft snapshot is
 * `JSON.stringify(state)`.
 *
 * An entry that does not fit the state (unknown key, impossible transition,
 * older term) is refused deterministically: every node refuses it the same
 * way, so ledgers never diverge, and `applyChecked` says why.
 */
import { offeringId, type Offering } from '../../../providers/types.ts'
import {
  LEDGER_VERSION,
  type AdoptedEntry,
  type CompactEntry,
  type DecisionEntry,
  type IntentEntry,
  type LaunchedEntry,
  type LedgerEntry,
  type NoticeEntry,
  type PriceEntry,
  type RecordedAnswer,
  type RecordState,
  type StateEntry,
  type VanishedEntry
} from './entries.ts'
import { lifetimeCost, monthStartUtc } from './spend.ts'

export type { RecordState } from './entries.ts'

export interface DecisionRecord {
  id: string
  seq: number
  term: number
  at: number
  kind: 'burst' | 'terminate' | 'tick'
  requestId: string | null
  answer: RecordedAnswer | null
  reason: string
  line: string
}

/** A price in force from `at` on: the ledger integrates these for spend. */
export interface Charge { at: number, pricePerHour: number }

export interface InstanceRecord {
  key: string
  /** The decision that made it; null when adopted. */
  decisionId: string | null
  origin: 'intent' | 'adopted'
  /** The provider's name in the config. */
  provider: string
  offering: Offering
  /** What the budget charges for it now. */
  pricePerHour: number
  /** On-demand because spot could not be had (dynamic_ondemand_fallback); replaced by spot when it can. */
  fallback: boolean
  /** The instance this launch replaces once ready: a fallback on-demand one, or one its provider warned about. */
  replaces: string | null
  /**
   * The provider warned that it will be taken away: `at` is when it goes
   * (interruption) or when the risk was noticed (rebalance); `recordedAt` when
   * the leader recorded it. An interruption is never replaced by a rebalance.
   */
  notice: { kind: 'rebalance' | 'interruption', at: number, recordedAt: number, replace: boolean } | null
  state: RecordState
  reason: string
  stateAt: number
  intentAt: number
  /** The provider's instance id, once known. */
  id: string | null
  launchedAt: number | null
  address: string | null
  drainDeadline: number | null
  /** When billing stopped (terminated, vanished, or failed before anything existed). */
  endedAt: number | null
  charges: Charge[]
  /** Offerings that answered InsufficientCapacity for it, and when. */
  capacityErrors: { at: number, refused: string[] } | null
  /** The term of the last entry that touched it. */
  term: number
}

export interface LedgerState {
  v: typeof LEDGER_VERSION
  /** Highest term applied; an entry of an older term is refused. */
  term: number
  /** Next decision ordinal. */
  seq: number
  /** Entries applied (refused ones not counted). */
  applied: number
  /** Highest `at` applied. */
  clock: number
  decisions: Record<string, DecisionRecord>
  /** Request id → decision id: a retried request gets its recorded answer. */
  requests: Record<string, string>
  instances: Record<string, InstanceRecord>
  /** Spend of instances forgotten by compaction, so the running total stays whole. */
  compacted: { before: number, spend: number }
}

export function emptyLedger (): LedgerState {
  return { v: LEDGER_VERSION, term: 0, seq: 0, applied: 0, clock: 0, decisions: {}, requests: {}, instances: {}, compacted: { before: 0, spend: 0 } }
}

/** Own-property lookup: keys come off the network. */
export function own<T> (map: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined
}

export type Applied = { state: LedgerState, ok: true } | { state: LedgerState, ok: false, why: string }

/** Applies one (parsed) entry. */
export function apply (state: LedgerState, entry: LedgerEntry): LedgerState {
  return applyChecked(state, entry).state
}

/** Applies one (parsed) entry and says whether it was refused, and why. */
export function applyChecked (state: LedgerState, entry: LedgerEntry): Applied {
  if (entry.term < state.term) return refuse(state, `term ${entry.term} is older than ${state.term}`)
  const r = reduce(state, entry)
  if (typeof r === 'string') return refuse(state, r)
  r.term = Math.max(state.term, entry.term)
  r.clock = Math.max(state.clock, entry.at)
  r.applied = state.applied + 1
  return { state: r, ok: true }
}

/** Folds a committed log (already parsed) into a ledger: how a new leader, or a restarted node, rebuilds it. */
export function rebuild (entries: Iterable<LedgerEntry>, from: LedgerState = emptyLedger()): LedgerState {
  let s = from
  for (const e of entries) s = apply(s, e)
  return s
}

function refuse (state: LedgerState, why: string): Applied {
  return { state, ok: false, why }
}

/** A shallow copy of the state to change; the caller fills term/clock/applied. */
function next (state: LedgerState): LedgerState {
  return { ...state }
}

function withRecord (state: LedgerState, rec: InstanceRecord): LedgerState {
  const s = next(state)
  s.instances = { ...state.instances, [rec.key]: rec }
  return s
}

function reduce (state: LedgerState, e: LedgerEntry): LedgerState | string {
  switch (e.type) {
    case 'decision': return onDecision(state, e)
    case 'instance.intent': return onIntent(state, e)
    case 'instance.launched': return onLaunched(state, e)
    case 'instance.state': return onState(state, e)
    case 'instance.price': return onPrice(state, e)
    case 'instance.adopted': return onAdopted(state, e)
    case 'instance.vanished': return onVanished(state, e)
    case 'instance.notice': return onNotice(state, e)
    case 'ledger.compact': return onCompact(state, e)
  }
}

function onDecision (state: LedgerState, e: DecisionEntry): LedgerState | string {
  if (own(state.decisions, e.id) !== undefined) return `decision ${e.id} is already recorded`
  if (e.requestId !== null && own(state.requests, e.requestId) !== undefined) return `request ${e.requestId} is already answered`
  const s = next(state)
  s.decisions = { ...state.decisions, [e.id]: { id: e.id, seq: e.seq, term: e.term, at: e.at, kind: e.kind, requestId: e.requestId, answer: e.answer, reason: e.reason, line: e.line } }
  if (e.requestId !== null) s.requests = { ...state.requests, [e.requestId]: e.id }
  s.seq = Math.max(state.seq, e.seq + 1)
  return s
}

function onIntent (state: LedgerState, e: IntentEntry): LedgerState | string {
  if (own(state.instances, e.key) !== undefined) return `key ${e.key} is already in the ledger`
  return withRecord(state, {
    key: e.key,
    decisionId: e.decisionId,
    origin: 'intent',
    provider: e.offering.provider,
    offering: e.offering,
    pricePerHour: e.pricePerHour,
    fallback: e.fallback,
    replaces: e.replaces ?? null,
    notice: null,
    state: 'provisioning',
    reason: e.reason,
    stateAt: e.at,
    intentAt: e.at,
    id: null,
    launchedAt: null,
    address: null,
    drainDeadline: null,
    endedAt: null,
    charges: [],
    capacityErrors: null,
    term: e.term
  })
}

function onLaunched (state: LedgerState, e: LaunchedEntry): LedgerState | string {
  const rec = own(state.instances, e.key)
  if (rec === undefined) return `launched: key ${e.key} has no intent (adopt it instead)`
  if (rec.id !== null && rec.id !== e.id) return `launched: key ${e.key} is already instance ${rec.id}, not ${e.id}`
  if (rec.id === e.id) return { ...state } // the same news twice (launcher and reconciliation): nothing changes
  const r: InstanceRecord = { ...rec, id: e.id, launchedAt: e.launchedAt, pricePerHour: e.pricePerHour, charges: [{ at: e.launchedAt, pricePerHour: e.pricePerHour }], term: e.term }
  if (e.offering !== undefined) r.offering = e.offering
  if (e.address !== undefined) r.address = e.address
  if (e.refused !== undefined && e.refused.length > 0) r.capacityErrors = { at: e.at, refused: e.refused }
  switch (rec.state) {
    case 'provisioning':
      Object.assign(r, { state: 'starting', reason: e.reason, stateAt: e.at })
      break
    case 'terminating':
      break // we are already getting rid of it; now we know its id
    case 'failed':
    case 'terminated':
      // Given up on, yet it exists and bills: it must go.
      Object.assign(r, { state: 'terminating', reason: `launched after it was given up (${rec.reason}): terminate`, stateAt: e.at, endedAt: null })
      break
    default:
      return `launched: key ${e.key} is ${rec.state} without an id`
  }
  return withRecord(state, r)
}

/** Which `instance.state` entries may follow which state. */
const ALLOWED: Readonly<Record<RecordState, readonly RecordState[]>> = {
  provisioning: ['terminating', 'failed'],
  starting: ['ready', 'draining', 'terminating', 'failed'],
  ready: ['draining', 'terminating'],
  draining: ['terminating'],
  terminating: ['terminated'],
  failed: ['terminating', 'terminated'],
  // Listed again after we thought it gone: it bills, so it goes back to terminating.
  terminated: ['terminating']
}

function onState (state: LedgerState, e: StateEntry): LedgerState | string {
  const rec = own(state.instances, e.key)
  if (rec === undefined) return `state: unknown key ${e.key}`
  if (!ALLOWED[rec.state].includes(e.state)) return `state: ${e.key} cannot go from ${rec.state} to ${e.state}`
  const r: InstanceRecord = { ...rec, state: e.state, reason: e.reason, stateAt: e.at, term: e.term }
  if (e.state === 'draining') r.drainDeadline = e.drainDeadline ?? e.at
  if (e.state === 'terminated') r.endedAt = e.at
  if (e.state === 'failed') {
    if (rec.id === null) r.endedAt = e.at // nothing exists: nothing bills
    if (e.error !== undefined && e.error.refused.length > 0) r.capacityErrors = { at: e.at, refused: e.error.refused }
  }
  if (e.state === 'terminating') r.endedAt = null
  return withRecord(state, r)
}

function onPrice (state: LedgerState, e: PriceEntry): LedgerState | string {
  const rec = own(state.instances, e.key)
  if (rec === undefined) return `price: unknown key ${e.key}`
  if (rec.endedAt !== null) return `price: ${e.key} no longer bills`
  const r: InstanceRecord = { ...rec, pricePerHour: e.pricePerHour, term: e.term }
  if (rec.launchedAt !== null) r.charges = [...rec.charges, { at: Math.max(e.at, rec.launchedAt), pricePerHour: e.pricePerHour }]
  return withRecord(state, r)
}

function onAdopted (state: LedgerState, e: AdoptedEntry): LedgerState | string {
  if (own(state.instances, e.key) !== undefined) return `adopted: key ${e.key} is already in the ledger`
  return withRecord(state, {
    key: e.key,
    decisionId: null,
    origin: 'adopted',
    provider: e.offering.provider,
    offering: e.offering,
    pricePerHour: e.pricePerHour,
    fallback: false,
    replaces: null,
    notice: null,
    state: 'starting',
    reason: e.reason,
    stateAt: e.at,
    intentAt: e.at,
    id: e.id,
    launchedAt: e.launchedAt,
    address: null,
    drainDeadline: null,
    endedAt: null,
    charges: [{ at: e.launchedAt, pricePerHour: e.pricePerHour }],
    capacityErrors: null,
    term: e.term
  })
}

function onVanished (state: LedgerState, e: VanishedEntry): LedgerState | string {
  const rec = own(state.instances, e.key)
  if (rec === undefined) return `vanished: unknown key ${e.key}`
  if (rec.state === 'terminated') return `vanished: ${e.key} is already terminated`
  return withRecord(state, { ...rec, state: 'terminated', reason: e.reason, stateAt: e.at, endedAt: rec.endedAt ?? e.at, term: e.term })
}

function onNotice (state: LedgerState, e: NoticeEntry): LedgerState | string {
  const rec = own(state.instances, e.key)
  if (rec === undefined) return `notice: unknown key ${e.key}`
  if (isFinished(rec)) return `notice: ${e.key} is ${rec.state}`
  if (rec.notice !== null && (rec.notice.kind === 'interruption' || e.kind === 'rebalance')) return `notice: ${e.key} already has a${rec.notice.kind === 'interruption' ? 'n interruption' : ' rebalance'} notice`
  // Whether a replacement is due was settled by the first notice (an
  // interruption after a rebalance does not ask for a second one).
  const replace = rec.notice === null ? e.replace : rec.notice.replace
  return withRecord(state, { ...rec, notice: { kind: e.kind, at: e.noticeAt, recordedAt: e.at, replace }, term: e.term })
}

function onCompact (state: LedgerState, e: CompactEntry): LedgerState | string {
  const before = Math.min(e.before, monthStartUtc(e.at))
  if (before <= state.compacted.before) return `compact: already compacted before ${state.compacted.before}`
  const s = next(state)
  let spend = state.compacted.spend
  const instances: Record<string, InstanceRecord> = {}
  for (const r of Object.values(state.instances)) {
    if (isFinished(r) && r.endedAt !== null && r.endedAt < before) spend += lifetimeCost(r, r.endedAt)
    else instances[r.key] = r
  }
  const decisions: Record<string, DecisionRecord> = {}
  const requests: Record<string, string> = {}
  for (const d of Object.values(state.decisions)) {
    if (d.at < before) continue
    decisions[d.id] = d
    if (d.requestId !== null) requests[d.requestId] = d.id
  }
  s.instances = instances
  s.decisions = decisions
  s.requests = requests
  s.compacted = { before, spend }
  return s
}

// ---------------------------------------------------------------------------
// Queries

/** Capacity we keep paying for: pending launches, booting, serving, draining. */
const LIVE_STATES: readonly RecordState[] = ['provisioning', 'starting', 'ready', 'draining']

export function isLive (r: InstanceRecord): boolean {
  return LIVE_STATES.includes(r.state)
}

/** Done: nothing bills any more. */
export function isFinished (r: InstanceRecord): boolean {
  return r.state === 'terminated' || (r.state === 'failed' && r.endedAt !== null)
}

/** May still bill: live, or on its way out and not confirmed gone. */
export function mayBill (r: InstanceRecord): boolean {
  return !isFinished(r)
}

/** All records, oldest first (intent time, then key), so every query is deterministic. */
export function records (state: LedgerState): InstanceRecord[] {
  return Object.values(state.instances).sort((a, b) => a.intentAt - b.intentAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

export function liveRecords (state: LedgerState): InstanceRecord[] {
  return records(state).filter(isLive)
}

export function byState (state: LedgerState): Record<RecordState, InstanceRecord[]> {
  const out: Record<RecordState, InstanceRecord[]> = { provisioning: [], starting: [], ready: [], draining: [], terminating: [], terminated: [], failed: [] }
  for (const r of records(state)) out[r.state].push(r)
  return out
}

export function getRecord (state: LedgerState, key: string): InstanceRecord | undefined {
  return own(state.instances, key)
}

/** Projected $/h of all live burst capacity (pending + running + draining): what the budget bounds after every decision. */
export function projectedPerHour (state: LedgerState): number {
  let m = 0
  for (const r of Object.values(state.instances)) if (isLive(r)) m += Math.round(r.pricePerHour * 1_000_000)
  return m / 1_000_000
}

/** $/h of everything that may still bill, terminating included: what new launches must fit beside. */
export function committedPerHour (state: LedgerState): number {
  let m = 0
  for (const r of Object.values(state.instances)) if (mayBill(r)) m += Math.round(r.pricePerHour * 1_000_000)
  return m / 1_000_000
}

/** The answer recorded for a request id, if it was answered. */
export function answerFor (state: LedgerState, requestId: string): RecordedAnswer | null {
  const d = own(state.requests, requestId)
  if (d === undefined) return null
  return own(state.decisions, d)?.answer ?? null
}

/**
 * Spot offerings (and their zones) whose instances were interrupted within
 * `ttlMs` before `now`: placement ranks them last (plan/placement.ts).
 */
export function preempted (state: LedgerState, now: number, ttlMs: number): { offerings: Set<string>, zones: Set<string> } {
  const offerings = new Set<string>()
  const zones = new Set<string>()
  for (const r of Object.values(state.instances)) {
    if (r.notice?.kind !== 'interruption' || now - r.notice.recordedAt >= ttlMs) continue
    offerings.add(offeringId(r.offering))
    zones.add(zoneKey(r.offering))
  }
  return { offerings, zones }
}

/** provider/region/zone: what a correlated spot reclaim hits. */
export function zoneKey (p: { provider: string, region: string, zone?: string }): string {
  return `${p.provider}/${p.region}/${p.zone ?? '-'}`
}

/** Offering ids that answered InsufficientCapacity within `ttlMs` before `now`. */
export function capacityRefused (state: LedgerState, now: number, ttlMs: number | ((provider: string) => number)): Set<string> {
  const out = new Set<string>()
  // An offering id starts with its provider's name (which has no "/").
  const ttl = (o: string): number => typeof ttlMs === 'number' ? ttlMs : ttlMs(o.slice(0, o.indexOf('/')))
  for (const r of Object.values(state.instances)) {
    if (r.capacityErrors !== null) for (const o of r.capacityErrors.refused) if (now - r.capacityErrors.at < ttl(o)) out.add(o)
  }
  return out
}

