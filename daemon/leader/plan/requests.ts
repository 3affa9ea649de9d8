/**
 * Manual requests, pure: `meshd burst --count N` and `meshd burst --terminate`.
 * Each becomes one decision with its answer (INTERFACE.md's `meshd burst
 * --json`) and its one log line; a request id already answered gets the
 * recorded answer again and changes nothing (the CLI retries across leader
 * changes with the same id).
 */
import { offeringId } from '../../../providers/types.ts'
import { allocate, type Allocation, type Slot } from './allocate.ts'
import { limitsOf, type Held } from './budget.ts'
import { answerFor, liveRecords, mayBill, records, capacityRefused, preempted, type LedgerState } from '../ledger/ledger.ts'
import { requestIdPattern } from '../ledger/entries.ts'
import { perHour, priceRange } from './money.ts'
import { memberOf, staticReplicas, type MemberIndex } from './observe.ts'
import { tier, type PlacementContext } from './placement.ts'
import { leastUseful, victimOf } from './victims.ts'
import { canDrain, drain, emit, launch, nextDecisionId, type Work } from './work.ts'
import type { Answer, BurstRequest, DecisionReason, MemberObservation, Policy, TerminateRequest } from './types.ts'
import type { Offering } from '../../../providers/types.ts'

/** Most replicas one request may ask for: a typo guard, far above any max_cloud_instances in use. */
const MAX_REQUEST_COUNT = 10_000

export interface RequestContext {
  policy: Policy
  prices: readonly Offering[]
  members: readonly MemberObservation[]
  index: MemberIndex
}

/** What the budget guard counts: everything that may still bill. */
export function heldOf (ledger: LedgerState): Held[] {
  return records(ledger).filter(mayBill).map((r) => ({ key: r.key, provider: r.provider, pricePerHour: r.pricePerHour }))
}

/** Placement's view of the ledger: what stays (draining is leaving), and the always-on base. */
export function placementOf (w: Work, c: RequestContext): PlacementContext {
  const placed = liveRecords(w.ledger).filter((r) => r.state !== 'draining').map((r) => {
    const p: { provider: string, region: string, zone?: string, spot: boolean } = { provider: r.provider, region: r.offering.region, spot: r.offering.spot }
    if (r.offering.zone !== undefined) p.zone = r.offering.zone
    return p
  })
  return {
    providers: c.policy.providers,
    offerings: c.prices,
    // A provider's own `unavailable_for` (aws) over the leader's default: both sides forget a refusal together.
    refused: capacityRefused(w.ledger, w.now, (p) => c.policy.providers.find((x) => x.name === p)?.unavailableForMs ?? c.policy.burst.capacityErrorTtlMs),
    preempted: preempted(w.ledger, w.now, c.policy.burst.preemptionMemoryMs),
    placed,
    staticOnDemand: staticReplicas(c.members).filter((m) => !m.spot).length,
    baseOndemandFallbackReplicas: c.policy.service.baseOndemandFallbackReplicas,
    dynamicOndemandFallback: c.policy.service.dynamicOndemandFallback
  }
}

/** "workstation local ×2 at 0.30/h, aws-spot us-east-1/us-east-1a spot ×1 at 0.20/h" */
export function describeSlots (slots: readonly Slot[]): string {
  const groups = new Map<string, { s: Slot, n: number }>()
  for (const s of slots) {
    const id = `${offeringId(s.offering)}|${s.fallback}|${s.base}`
    const g = groups.get(id)
    if (g === undefined) groups.set(id, { s, n: 1 })
    else g.n += 1
  }
  return [...groups.values()].map(({ s, n }) => {
    const o = s.offering
    return `${o.provider} ${o.region}${o.zone === undefined ? '' : `/${o.zone}`}${o.instanceType === undefined ? '' : ` ${o.instanceType}`}${market(s)} ×${n} at ${perHour(o.pricePerHour)}`
  }).join(', ')
}

/** The market of a cloud slot, and why an on-demand one was taken; nothing for local processes and pool hosts. */
function market (s: Slot): string {
  if (s.offering.spot) return ' spot'
  if (s.fallback) return ' on-demand (fallback: spot unavailable)'
  if (s.base) return ' on-demand (base_ondemand_fallback_replicas)'
  return tier(s.offering) === 2 ? ' on-demand' : ''
}

function want (r: BurstRequest): string {
  const parts: string[] = []
  if (r.provider !== undefined) parts.push(`--provider ${r.provider}`)
  if (r.spot === true) parts.push('--spot')
  if (r.spot === false) parts.push('--on-demand')
  return parts.length === 0 ? '' : ` (${parts.join(' ')})`
}

function verdict (requested: number, granted: number): Answer['decision'] {
  return granted === 0 ? 'refused' : granted < requested ? 'cut' : 'granted'
}

function record (w: Work, kind: 'burst' | 'terminate', requestId: string, answer: Answer, line: string, decision: { id: string, seq: number }, reason: DecisionReason): void {
  emit(w, { type: 'decision', id: decision.id, seq: decision.seq, kind, requestId, answer, reason: answer.reason, line })
  w.decisions.push({ kind, outcome: answer.decision, reason })
}

/** The reason kind of an allocation that stopped short (or not). */
function allocationReason (a: Allocation): DecisionReason {
  if (a.binding !== null) return a.binding.kind
  return a.none !== null ? 'no_offering' : 'within_limits'
}

export interface Handled {
  answer: Answer
  /** The log line; null when the answer was a replay of a recorded one. */
  line: string | null
}

/** A request whose id cannot be recorded is refused without a record. */
function badId (id: string, requested: unknown): Handled | null {
  if (typeof id === 'string' && requestIdPattern.test(id)) return null
  const reason = 'request id must be letters, digits and ._:/@- (at most 128)'
  return { answer: { id: String(id), requested: typeof requested === 'number' && Number.isInteger(requested) && requested >= 0 ? requested : 0, granted: 0, decision: 'refused', reason, provider: null, instances: [] }, line: `request ${JSON.stringify(String(id)).slice(0, 140)} refused: ${reason}` }
}

export function handleBurst (w: Work, c: RequestContext, req: BurstRequest): Handled {
  const bad = badId(req.id, req.count)
  if (bad !== null) return bad
  const prior = answerFor(w.ledger, req.id)
  if (prior !== null) return { answer: prior, line: null }
  const d = nextDecisionId(w)
  const count = req.count
  const base = { id: req.id, requested: Number.isInteger(count) && count >= 0 ? count : 0, provider: null, instances: [] }
  const refuse = (reason: string, kind: DecisionReason): Handled => {
    const answer: Answer = { ...base, granted: 0, decision: 'refused', reason }
    const line = `burst ${d.id} request ${req.id}: requested ${String(count)}${want(req)} → refused: ${reason}`
    record(w, 'burst', req.id, answer, line, d, kind)
    return { answer, line }
  }
  if (!Number.isInteger(count) || count < 1 || count > MAX_REQUEST_COUNT) return refuse(`count must be a whole number from 1 to ${MAX_REQUEST_COUNT}, got ${String(count)}`, 'invalid_request')

  const limits = limitsOf(c.policy)
  const wanted: { provider?: string, spot?: boolean } = {}
  if (req.provider !== undefined) wanted.provider = req.provider
  if (req.spot !== undefined) wanted.spot = req.spot
  const alloc = allocate(count, placementOf(w, c), wanted, heldOf(w.ledger), limits)
  // Asking for a provider the config does not have is the request's fault, not the offerings'.
  const unknownProvider = req.provider !== undefined && !c.policy.providers.some((p) => p.name === req.provider)
  if (alloc.slots.length === 0) return refuse(alloc.reason, unknownProvider ? 'invalid_request' : allocationReason(alloc))

  const keys = alloc.slots.map((_, i) => `${d.id}-${i}`)
  const providers = [...new Set(alloc.slots.map((s) => s.offering.provider))]
  const fallbacks = alloc.slots.filter((s) => s.fallback).length
  const decision = verdict(count, alloc.slots.length)
  let reason = alloc.reason
  if (fallbacks > 0) reason += `; ${fallbacks} on on-demand: spot unavailable (dynamic_ondemand_fallback)`
  const answer: Answer = { ...base, granted: alloc.slots.length, decision, reason, provider: providers.join('+'), instances: keys }
  const line = `burst ${d.id} request ${req.id}: requested ${count}${want(req)} → ${decision} ${alloc.slots.length}: ${reason}; ${describeSlots(alloc.slots)}; keys ${keys.join(' ')}`
  record(w, 'burst', req.id, answer, line, d, allocationReason(alloc))
  alloc.slots.forEach((s, i) => {
    const key = keys[i]!
    const why = `request ${req.id}: ${s.base ? 'on-demand base (base_ondemand_fallback_replicas)' : s.fallback ? 'on-demand fallback: spot unavailable' : `${priceRange([s.offering.pricePerHour])}, cheapest with room`}`
    emit(w, { type: 'instance.intent', key, decisionId: d.id, offering: s.offering, pricePerHour: s.offering.pricePerHour, fallback: s.fallback, reason: why })
    launch(w, key, s.offering, s.fallbacks, why)
  })
  return { answer, line }
}

export function handleTerminate (w: Work, c: RequestContext, req: TerminateRequest): Handled {
  const bad = badId(req.id, req.count)
  if (bad !== null) return bad
  const prior = answerFor(w.ledger, req.id)
  if (prior !== null) return { answer: prior, line: null }
  const d = nextDecisionId(w)
  const all = req.all === true
  const what = all ? '--all' : `--count ${String(req.count)}`
  const scope = req.provider === undefined ? '' : ` --provider ${req.provider}`
  const finish = (answer: Answer, detail: string, kind: DecisionReason): Handled => {
    const line = `terminate ${d.id} request ${req.id}: ${what}${scope} → ${answer.decision} ${answer.granted}: ${answer.reason}${detail}`
    record(w, 'terminate', req.id, answer, line, d, kind)
    return { answer, line }
  }
  const refused = (requested: number, reason: string, kind: DecisionReason): Handled => finish({ id: req.id, requested, granted: 0, decision: 'refused', reason, provider: null, instances: [] }, '', kind)

  if (!all && (req.count === undefined || !Number.isInteger(req.count) || req.count < 1 || req.count > MAX_REQUEST_COUNT)) {
    return refused(0, `count must be a whole number from 1 to ${MAX_REQUEST_COUNT}, or all`, 'invalid_request')
  }
  if (req.provider !== undefined && !c.policy.providers.some((p) => p.name === req.provider)) {
    return refused(req.count ?? 0, `no provider named ${req.provider} (have ${c.policy.providers.map((p) => p.name).join(', ') || 'none'})`, 'invalid_request')
  }
  const candidates = liveRecords(w.ledger).filter((r) => r.state !== 'draining' && (req.provider === undefined || r.provider === req.provider))
  const requested = all ? candidates.length : req.count ?? 0
  if (candidates.length === 0) return refused(requested, `no burst instances live${req.provider === undefined ? '' : ` on ${req.provider}`}`, 'nothing_to_terminate')

  const victims = leastUseful(candidates.map((r) => victimOf(r, c.index)), requested)
  const decision = verdict(requested, victims.length)
  const reason = decision === 'cut'
    ? `only ${candidates.length} burst instances live${req.provider === undefined ? '' : ` on ${req.provider}`}`
    : `least useful first: ${victims.map((v) => `${v.key} (${v.why})`).join(', ')}`
  const providers = [...new Set(victims.map((v) => candidates.find((r) => r.key === v.key)!.provider))]
  const answer: Answer = { id: req.id, requested, granted: victims.length, decision, reason, provider: providers.join('+'), instances: victims.map((v) => v.key) }
  // The decision first, then the transitions it causes.
  const plan = victims.map((v) => {
    const r = candidates.find((x) => x.key === v.key)!
    const m = memberOf(c.index, r)
    return { v, m, how: canDrain(r, m) ? 'drain' : 'terminate' }
  })
  const result = finish(answer, `; ${plan.map((p) => `${p.how} ${p.v.key}`).join(', ')}`, decision === 'cut' ? 'nothing_to_terminate' : 'requested')
  for (const p of plan) drain(w, p.v.key, p.m, c.policy.burst, `request ${req.id}: ${p.v.why}`)
  return result
}
