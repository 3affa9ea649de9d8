/**
 * decide({ observations, ledger, policy, prices, now, memory }) → what the
 * leader does next. Pure: no I/O, no clock, no randomness; ids and keys derive from
 * the term and the ledger's decision ordinal.
 *
 * Out come ledger entries to record (before any provider call: intents first,
 * Karpenter style, so the budget is judged when the intent is made and a new
 * leader sees every launch that may be under way), actions for the launcher
 * (launch, drain, terminate: data, each with its reason), answers to manual
 * requests, and one human-readable line per decision.
 *
 * One call, in order (each step sees the entries of the earlier ones):
 *  1. reconciliation with each provider's list(): adopt, record, vanish;
 *  2. prices: instances whose offering's price changed are re-priced
 *     (adopted ones included, in the same call);
 *  3a. notices (notices.ts): a member that announces a spot interruption
 *     or a rebalance recommendation has it recorded; an interrupted one is
 *     drained until its termination time;
 *  3. lifecycle of every instance (lifecycle.ts): ready, launch timeouts,
 *     ttl, idle_timeout, dead members, drains finishing, re-issues;
 *  4. the budget: if what we keep costs more than cost_budget (prices rose,
 *     an orphan was adopted), shed the most expensive at once;
 *  5. counts above max_cloud_instances / max_instances (lowered in the
 *     config): drain the least useful;
 *  5a. a replacement for each instance under a notice that has none, within
 *     the budget, away from preempted zones (notices.ts); a rebalanced
 *     instance drained once its replacement is ready;
 *  6. manual terminate requests, then manual burst requests, in order;
 *  7. dynamic_ondemand_fallback: spot back? launch a spot replacement for
 *     each fallback on-demand instance, drain the fallback once it is ready;
 *  8. burst.mode auto: the autoscaler's target (autoscale.ts).
 *
 * After every call: the projected $/h of live burst capacity is within
 * cost_budget, and a launch was only decided if it fits beside everything
 * that may still bill (test/leader/decide.property.test.ts).
 */
import { offeringId, type Instance, type Offering } from '../../../providers/types.ts'
import { allocate } from './allocate.ts'
import { autoscale, type AutoDecision } from './autoscale.ts'
import { limitsOf, shed } from './budget.ts'
import { committedPerHour, getRecord, isFinished, liveRecords, own, projectedPerHour, records, type InstanceRecord, type LedgerState } from '../ledger/ledger.ts'
import { instanceSchema, offeringSchema, type LedgerEntry } from '../ledger/entries.ts'
import { lifecycle, type Step } from './lifecycle.ts'
import { recordNotices, replaceNoticed } from './notices.ts'
import { clone, memoryFor, prune, type LeaderMemory } from './memory.ts'
import { micros, perHour } from './money.ts'
import { indexMembers, isBusy, memberOf, type MemberIndex } from './observe.ts'
import { reconcile, type ReconcileStep } from './reconcile.ts'
import { describeSlots, handleBurst, handleTerminate, heldOf, placementOf, type RequestContext } from './requests.ts'
import { monthStartUtc, spend, type Spend } from '../ledger/spend.ts'
import { leastUseful, victimOf } from './victims.ts'
import { act, drain, emit, launch, record, setState, terminate, type Work } from './work.ts'
import { DECISION_REASONS, type Action, type Answer, type DecisionReason, type DecisionTally, type Observations, type Policy, type ProviderListing } from './types.ts'

export interface BudgetSummary {
  costBudget: number
  /** Live burst capacity (pending + running + draining), after this decision. */
  projectedPerHour: number
  /** Everything that may still bill, terminating included. */
  committedPerHour: number
  live: number
  maxCloudInstances: number
  spend: Spend
}

export interface DecideResult {
  /** Record these in the Raft log, in this order, and wait for the commit before running any action. */
  entries: LedgerEntry[]
  /** Run after the entries are committed; each is idempotent. */
  actions: Action[]
  /** One per manual request, in order. */
  answers: Answer[]
  /** One human-readable line per decision. */
  lines: string[]
  /** Every decision recorded in `entries`, with its outcome and reason kind (for metrics). */
  decisions: DecisionTally[]
  /** Hand to the next decide() call of this term. */
  memory: LeaderMemory
  /** The ledger as it will be once `entries` are applied. */
  ledger: LedgerState
  /** Set when nothing was decided: the previous call's decisions are not in the ledger yet (pass the requests again). */
  waiting: string | null
  /** The autoscaler's view this tick (auto mode). */
  auto: AutoDecision | null
  budget: BudgetSummary
}

/** What one decide() call is given. */
export interface DecideInput {
  /** Members, providers' lists, pending requests; `observations.term` is the leader's term. */
  observations: Observations
  /** The committed ledger. */
  ledger: LedgerState
  policy: Policy
  /** Every provider's offerings (a provider whose call failed left out). */
  prices: readonly Offering[]
  now: number
  /** What the previous call of this term handed back (none for a new leader). */
  memory?: LeaderMemory | undefined
}

export function decide (input: DecideInput): DecideResult {
  const { ledger, policy, now, memory } = input
  const term = input.observations.term
  const mem = clone(memoryFor(memory, term, now))

  // A leader of an older term than the ledger has been deposed: its entries
  // would be refused everywhere.
  if (term < ledger.term) {
    const waiting = `term ${term} is older than the ledger's ${ledger.term}: no longer the leader`
    return { entries: [], actions: [], answers: [], lines: [waiting], decisions: [], memory: mem, ledger, waiting, auto: null, budget: summary(ledger, policy, now) }
  }

  // One decision in flight: deciding again on a ledger that does not yet show
  // the last decision's intents would spend the same headroom twice.
  if (mem.awaiting !== null) {
    const missing = mem.awaiting.ids.filter((id) => own(ledger.decisions, id) === undefined)
    if (missing.length > 0 && now - mem.awaiting.since < policy.burst.actionRetryMs) {
      const waiting = `waiting for ${missing.join(', ')} to commit before deciding again`
      return { entries: [], actions: [], answers: [], lines: [waiting], decisions: [], memory: mem, ledger, waiting, auto: null, budget: summary(ledger, policy, now) }
    }
    mem.awaiting = null
  }

  // Provider data is checked, not assumed: a NaN price must not reach the log.
  const clean = sanitize(input.prices, input.observations.listings)
  const prices = clean.prices
  const observations: Observations = { ...input.observations, listings: clean.listings }
  const w: Work = { term, now, ledger, entries: [], actions: [], memory: mem, notes: clean.notes, seq: Math.max(ledger.seq, mem.nextSeq), decisions: [], causes: new Set() }
  const tick = { id: `d${term}-${w.seq}`, seq: w.seq, ordinal: 0 }
  w.seq += 1
  const index = indexMembers(observations.members)
  const ctx: RequestContext = { policy, prices, members: observations.members, index }

  const tickEntries = (): number => w.entries.length
  const listed = reconcileAll(w, observations, policy, prices)
  repriceAll(w, prices)
  recordNotices(w, policy, index)
  lifecycleAll(w, policy, index, listed)
  shedOverBudget(w, policy)
  drainOverCount(w, policy, index)
  replaceNoticed(w, ctx, tick)
  compactMonthly(w)
  let upkeepEntries = tickEntries()

  const { answers, lines } = answerRequests(w, ctx, observations)
  const afterRequests = tickEntries()

  if (policy.service.dynamicOndemandFallback) switchBackToSpot(w, ctx, tick)
  let auto: AutoDecision | null = null
  if (policy.burst.mode === 'auto') auto = autoscaleTick(w, ctx, tick)
  upkeepEntries += tickEntries() - afterRequests

  const decided = w.entries.filter((e) => e.type === 'decision').map((e) => (e as { id: string }).id)
  if (w.notes.length > 0) {
    const line = `tick ${tick.id}: ${w.notes.join('; ')}; live ${perHour(projectedPerHour(w.ledger))} of cost_budget ${perHour(policy.burst.costBudget)}, ${liveRecords(w.ledger).length} of max_cloud_instances ${policy.burst.maxCloudInstances}`
    if (upkeepEntries > 0) {
      emit(w, { type: 'decision', id: tick.id, seq: tick.seq, kind: 'tick', requestId: null, answer: null, reason: w.notes.join('; '), line })
      w.decisions.push({ kind: 'tick', outcome: 'acted', reason: tickReason(w.causes) })
      decided.push(tick.id)
    }
    lines.unshift(line)
  }

  mem.nextSeq = w.seq
  mem.awaiting = decided.length > 0 ? { ids: decided, since: now } : null
  prune(mem, new Set(records(w.ledger).filter((r) => !isFinished(r)).map((r) => r.key)))
  return { entries: w.entries, actions: w.actions, answers, lines, decisions: w.decisions, memory: mem, ledger: w.ledger, waiting: null, auto, budget: summary(w.ledger, policy, now) }
}

/** A tick's reason kind: the first of what its upkeep did, in DECISION_REASONS order (a budget shed before anything routine). */
function tickReason (causes: ReadonlySet<DecisionReason>): DecisionReason {
  return DECISION_REASONS.find((r) => causes.has(r)) ?? 'upkeep'
}

/** 6. Manual requests, terminations first, in order; a request id seen twice gets the first answer. */
function answerRequests (w: Work, ctx: RequestContext, obs: Observations): { answers: Answer[], lines: string[] } {
  const answers: Answer[] = []
  const lines: string[] = []
  const seen = new Map<string, Answer>()
  const handled = [
    ...obs.terminate.map((req) => ({ id: req.id, run: () => handleTerminate(w, ctx, req) })),
    ...obs.burst.map((req) => ({ id: req.id, run: () => handleBurst(w, ctx, req) }))
  ]
  for (const req of handled) {
    const dup = seen.get(req.id)
    if (dup !== undefined) { answers.push(dup); continue }
    const h = req.run()
    seen.set(req.id, h.answer)
    answers.push(h.answer)
    if (h.line !== null) lines.push(h.line)
  }
  return { answers, lines }
}

function summary (ledger: LedgerState, policy: Policy, now: number): BudgetSummary {
  return {
    costBudget: policy.burst.costBudget,
    projectedPerHour: projectedPerHour(ledger),
    committedPerHour: committedPerHour(ledger),
    live: liveRecords(ledger).length,
    maxCloudInstances: policy.burst.maxCloudInstances,
    spend: spend(ledger, now)
  }
}

// ---------------------------------------------------------------------------
// 0. what comes from providers

function sanitize (prices: readonly Offering[], listings: readonly ProviderListing[]): { prices: Offering[], listings: ProviderListing[], notes: string[] } {
  const notes: string[] = []
  const okPrices: Offering[] = []
  let badPrices = 0
  for (const o of prices) {
    const p = offeringSchema.safeParse(o)
    if (p.success) okPrices.push(JSON.parse(JSON.stringify(p.data)) as Offering)
    else badPrices += 1
  }
  let badInstances = 0
  const okListings = listings.map((l) => {
    const instances: Instance[] = []
    for (const i of l.instances) {
      const p = instanceSchema.safeParse(i)
      if (p.success) instances.push(JSON.parse(JSON.stringify(p.data)) as Instance)
      else badInstances += 1
    }
    return { ...l, instances }
  })
  if (badPrices > 0) notes.push(`ignored ${badPrices} malformed offering(s)`)
  if (badInstances > 0) notes.push(`ignored ${badInstances} malformed listed instance(s)`)
  return { prices: okPrices, listings: okListings, notes }
}

// ---------------------------------------------------------------------------
// 2. prices

function repriceAll (w: Work, prices: readonly Offering[]): void {
  const byId = new Map(prices.map((o) => [offeringId(o), o]))
  for (const r of records(w.ledger)) {
    if (isFinished(r)) continue
    const o = byId.get(offeringId(r.offering))
    if (o === undefined || micros(o.pricePerHour) === micros(r.pricePerHour)) continue
    emit(w, { type: 'instance.price', key: r.key, pricePerHour: o.pricePerHour })
    w.notes.push(`price ${r.key} ${perHour(r.pricePerHour)} → ${perHour(o.pricePerHour)}`)
  }
}


// ---------------------------------------------------------------------------
// 1. reconciliation

/** Returns, per provider listed this time, the keys its list() shows. */
function reconcileAll (w: Work, obs: Observations, policy: Policy, prices: readonly Offering[]): Map<string, Set<string>> {
  const listed = new Map<string, Set<string>>()
  const listings = [...obs.listings].sort((a, b) => (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0))
  for (const l of listings) {
    listed.set(l.provider, new Set(l.instances.filter((i) => i.state !== 'terminated').map((i) => i.key)))
    const steps = reconcile(w.ledger, l, prices, policy.providers.find((p) => p.name === l.provider), policy.burst.vanishGraceMs)
    for (const s of steps) performReconcile(w, s)
  }
  return listed
}

function performReconcile (w: Work, s: ReconcileStep): void {
  switch (s.do) {
    case 'adopt':
      emit(w, { type: 'instance.adopted', key: s.key, id: s.instance.id, offering: s.offering, pricePerHour: s.instance.pricePerHour, launchedAt: s.instance.launchedAt, reason: s.reason })
      w.notes.push(`adopt ${s.key} (${s.instance.id} on ${s.instance.provider} at ${perHour(s.instance.pricePerHour)})`)
      return
    case 'launched': {
      const body: Parameters<typeof emit>[1] = { type: 'instance.launched', key: s.key, id: s.instance.id, launchedAt: s.instance.launchedAt, pricePerHour: s.instance.pricePerHour, reason: s.reason }
      if (s.instance.address !== undefined) (body as { address?: string }).address = s.instance.address
      emit(w, body)
      w.notes.push(`${s.key} is ${s.instance.id} (${s.reason})`)
      const r = record(w, s.key)
      if (r.state === 'terminating') terminate(w, s.key, r.reason) // decided while it launched: send it now
      return
    }
    case 'reopen':
      terminate(w, s.key, s.reason)
      w.notes.push(`terminate ${s.key} (${s.reason})`)
      return
    case 'duplicate':
      w.actions.push({ op: 'terminate', key: s.key, provider: s.instance.provider, id: s.instance.id, reason: s.reason })
      w.notes.push(`terminate ${s.instance.id} (${s.reason})`)
      return
    case 'vanished':
      emit(w, { type: 'instance.vanished', key: s.key, reason: s.reason })
      w.notes.push(`${s.key} gone (${s.reason})`)
  }
}

// ---------------------------------------------------------------------------
// 3. lifecycle

function lifecycleAll (w: Work, policy: Policy, index: MemberIndex, listed: Map<string, Set<string>>): void {
  const b = policy.burst
  const serving = liveRecords(w.ledger).filter((r) => r.state !== 'draining').length
  const keepWarm = b.mode === 'auto' && serving <= b.minCloudInstances
  for (const r0 of records(w.ledger)) {
    if (r0.state === 'terminated') continue
    const member = memberOf(index, r0)
    const key = r0.key
    const baseline = Math.max(r0.stateAt, w.memory.since)
    if (member !== undefined && member.state === 'alive') w.memory.lastSeen[key] = w.now
    if (member !== undefined && member.state === 'alive' && isBusy(member)) w.memory.busyAt[key] = w.now
    const seen = [member?.lastSeenAt, own(w.memory.lastSeen, key)].filter((x): x is number => x !== undefined)
    const lastSeen = seen.length > 0 ? Math.max(...seen) : baseline
    const busyAt = own(w.memory.busyAt, key) ?? baseline
    const list = listed.get(r0.provider)
    const steps = lifecycle(r0, {
      now: w.now,
      burst: b,
      member,
      lastSeen,
      busyAt,
      issued: own(w.memory.issued, key),
      listed: list === undefined ? null : list.has(key),
      keepWarm
    })
    for (const s of steps) performStep(w, policy, key, s, member)
  }
}

function performStep (w: Work, policy: Policy, key: string, s: Step, member: ReturnType<typeof memberOf>): void {
  const r = record(w, key)
  switch (s.do) {
    case 'launched':
      emit(w, { type: 'instance.launched', key, id: s.id, launchedAt: s.launchedAt, pricePerHour: r.pricePerHour, reason: s.reason })
      w.notes.push(`${key} is ${s.id} (${s.reason})`)
      return
    case 'ready':
      setState(w, key, 'ready', s.reason)
      w.notes.push(`ready ${key}`)
      return
    case 'fail': {
      setState(w, key, 'failed', s.reason)
      w.notes.push(`failed ${key} (${s.reason})`)
      if (record(w, key).id !== null) terminate(w, key, `failed: ${s.reason}`)
      return
    }
    case 'drain': {
      const how = drain(w, key, member, policy.burst, s.reason)
      w.notes.push(`${how} ${key} (${s.reason})`)
      return
    }
    case 'terminate':
      terminate(w, key, s.reason)
      w.notes.push(`terminate ${key} (${s.reason})`)
      return
    case 'gone':
      setState(w, key, 'terminated', s.reason)
      w.notes.push(`${key} gone (${s.reason})`)
      return
    case 'reissue':
      if (s.op === 'launch') launch(w, key, r.offering, [], s.reason)
      else if (s.op === 'terminate') act(w, { op: 'terminate', key, provider: r.provider, id: r.id, reason: s.reason })
      else act(w, { op: 'drain', key, member: member?.id ?? null, reason: s.reason })
      w.notes.push(`${s.op} ${key} again (${s.reason})`)
  }
}

// ---------------------------------------------------------------------------
// compaction: once a month, a day into it (so a request retried across the
// boundary still finds its answer), forget what finished before the month.

const DAY_MS = 86_400_000

function compactMonthly (w: Work): void {
  const month = monthStartUtc(w.now)
  if (w.now - month < DAY_MS || w.ledger.compacted.before >= month) return
  const old = Object.values(w.ledger.instances).some((r) => isFinished(r) && r.endedAt !== null && r.endedAt < month) ||
    Object.values(w.ledger.decisions).some((d) => d.at < month)
  if (!old) return
  emit(w, { type: 'ledger.compact', before: month })
  w.notes.push(`compacted what finished before ${new Date(month).toISOString().slice(0, 10)}`)
}

// ---------------------------------------------------------------------------
// 4. budget, 5. counts

function shedOverBudget (w: Work, policy: Policy): void {
  const kept = liveRecords(w.ledger).map((r) => ({ key: r.key, provider: r.provider, pricePerHour: r.pricePerHour, ready: r.state === 'ready' || r.state === 'draining', since: r.intentAt }))
  const s = shed(kept, limitsOf(policy))
  if (s.reason === null) return
  for (const key of s.keys) terminate(w, key, `${s.reason}: ${key} at ${perHour(record(w, key).pricePerHour)}`)
  w.notes.push(`${s.reason} (${s.keys.join(', ')})`)
  w.causes.add('cost_budget')
}

function drainOverCount (w: Work, policy: Policy, index: MemberIndex): void {
  const over = (rs: InstanceRecord[], max: number, what: string): void => {
    if (rs.length <= max) return
    w.causes.add(what === 'max_cloud_instances' ? 'max_cloud_instances' : 'max_instances')
    const victims = leastUseful(rs.map((r) => victimOf(r, index)), rs.length - max)
    for (const v of victims) {
      const r = record(w, v.key)
      const how = drain(w, v.key, memberOf(index, r), policy.burst, `${what} ${max}: ${rs.length} kept; ${v.why}`)
      w.notes.push(`${how} ${v.key} (${what} ${max})`)
    }
  }
  const kept = (): InstanceRecord[] => liveRecords(w.ledger).filter((r) => r.state !== 'draining')
  over(kept(), policy.burst.maxCloudInstances, 'max_cloud_instances')
  for (const p of policy.providers) over(kept().filter((r) => r.provider === p.name), p.maxInstances, `${p.name} max_instances`)
  // A provider no longer in the config has no room at all.
  const known = new Set(policy.providers.map((p) => p.name))
  const orphans = kept().filter((r) => !known.has(r.provider))
  if (orphans.length > 0) over(orphans, 0, 'provider not in the config: max_instances')
}

// ---------------------------------------------------------------------------
// 7. back to spot

function switchBackToSpot (w: Work, c: RequestContext, tick: { id: string, ordinal: number }): void {
  const limits = limitsOf(c.policy)
  for (const f of liveRecords(w.ledger)) {
    if (!f.fallback || f.state !== 'ready') continue
    const replacement = records(w.ledger).find((r) => r.replaces === f.key && !isFinished(r) && r.state !== 'terminating')
    if (replacement !== undefined) {
      if (replacement.state === 'ready') {
        const how = drain(w, f.key, memberOf(c.index, f), c.policy.burst, `spot replacement ${replacement.key} is ready: back to spot (dynamic_ondemand_fallback)`)
        w.notes.push(`${how} fallback ${f.key} (spot ${replacement.key} ready)`)
        w.causes.add('spot_return')
      }
      continue
    }
    const alloc = allocate(1, placementOf(w, c), { provider: f.provider, spot: true }, heldOf(w.ledger), limits)
    const slot = alloc.slots[0]
    if (slot === undefined) continue
    const key = `${tick.id}-${tick.ordinal++}`
    const reason = `spot available again: replaces on-demand fallback ${f.key}`
    emit(w, { type: 'instance.intent', key, decisionId: tick.id, offering: slot.offering, pricePerHour: slot.offering.pricePerHour, fallback: false, replaces: f.key, reason })
    launch(w, key, slot.offering, slot.fallbacks, reason)
    w.notes.push(`launch ${key} to replace fallback ${f.key} (${describeSlots([slot])})`)
    w.causes.add('spot_return')
  }
}

/** A spot launch whose on-demand fallback is still kept: the two count as one. */
function replacing (ledger: LedgerState, r: InstanceRecord): boolean {
  if (r.replaces === null) return false
  const f = getRecord(ledger, r.replaces)
  return f !== undefined && (f.state === 'ready' || f.state === 'starting')
}

// ---------------------------------------------------------------------------
// 8. auto

function autoscaleTick (w: Work, c: RequestContext, tick: { id: string, ordinal: number }): AutoDecision {
  // A spot replacement still waiting for its fallback to go is not extra capacity.
  const serving = liveRecords(w.ledger).filter((r) => r.state !== 'draining' && !replacing(w.ledger, r))
  const a = autoscale({
    now: w.now,
    policy: c.policy,
    members: c.members,
    burst: serving.length,
    since: w.memory.since,
    recommendations: w.memory.recommendations,
    shallowSince: w.memory.shallowSince
  })
  w.memory.recommendations = a.recommendations
  w.memory.shallowSince = a.shallowSince
  if (a.direction === 'up') {
    const alloc = allocate(a.desired - serving.length, placementOf(w, c), {}, heldOf(w.ledger), limitsOf(c.policy))
    alloc.slots.forEach((s) => {
      const key = `${tick.id}-${tick.ordinal++}`
      const why = `${a.reason}${s.fallback ? '; on-demand fallback: spot unavailable' : ''}`
      emit(w, { type: 'instance.intent', key, decisionId: tick.id, offering: s.offering, pricePerHour: s.offering.pricePerHour, fallback: s.fallback, reason: why })
      launch(w, key, s.offering, s.fallbacks, why)
    })
    if (alloc.slots.length > 0) w.causes.add('autoscale')
    const cut = alloc.slots.length < a.desired - serving.length ? ` — ${alloc.reason}` : ''
    w.notes.push(`${a.reason}: launch ${alloc.slots.length}${alloc.slots.length > 0 ? ` (${describeSlots(alloc.slots)})` : ''}${cut}`)
  } else if (a.direction === 'down') {
    const victims = leastUseful(serving.map((r) => victimOf(r, c.index)), serving.length - a.desired)
    const done = victims.map((v) => `${drain(w, v.key, memberOf(c.index, record(w, v.key)), c.policy.burst, `${a.reason}; ${v.why}`)} ${v.key}`)
    w.notes.push(`${a.reason}: ${done.join(', ')}`)
    if (victims.length > 0) w.causes.add('autoscale')
  }
  return a
}

