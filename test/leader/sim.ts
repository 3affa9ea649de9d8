/**
 * A small world for the leader's property tests: fake providers (the truth
 * about what runs and bills), burst members that boot, serve, hang, die and
 * leave, and a shell that drives decide() the way the real one must:
 *
 *   observe (members, list(), offerings()) → decide() → commit its entries
 *   → only then run its actions → commit what the provider calls returned.
 *
 * A leader change cuts the old leader off mid-decision: only a prefix of what
 * it proposed is committed, it may or may not have run the actions whose
 * entries committed, and what those calls returned is lost. The new leader
 * rebuilds the ledger from the committed log alone, with an empty memory.
 *
 * Spot notices: a member may announce a rebalance recommendation, or an
 * interruption (it drains itself at once, and its provider takes the
 * instance at the notice's time).
 *
 * After every decision `check` asserts the invariants (see the property test).
 * MESHD_SIM_DEBUG=1 prints the leader's log lines to stderr.
 */
import { isDeepStrictEqual } from 'node:util'
import { FakeProvider } from '../../providers/fake/index.ts'
import {
  InsufficientCapacityError,
  ProviderUnavailableError,
  QuotaError,
  isNotFoundError,
  type Instance,
  type Offering
} from '../../providers/types.ts'
import { decide, type DecideResult } from '../../daemon/leader/plan/decide.ts'
import { applyChecked, capacityRefused, emptyLedger, getRecord, isLive, mayBill, preempted, projectedPerHour, rebuild, records, zoneKey, type LedgerState } from '../../daemon/leader/ledger/ledger.ts'
import { offeringId } from '../../providers/types.ts'
import { parseEntry, type LedgerEntry } from '../../daemon/leader/ledger/entries.ts'
import type { LeaderMemory } from '../../daemon/leader/plan/memory.ts'
import { micros } from '../../daemon/leader/plan/money.ts'
import { terminateOutcome } from '../../daemon/leader/plan/outcomes.ts'
import { launch } from '../../daemon/leader/launcher.ts'
import { spend, dayStartUtc, monthStartUtc } from '../../daemon/leader/ledger/spend.ts'
import type { Action, BurstRequest, MemberObservation, Policy, ProviderListing, TerminateRequest } from '../../daemon/leader/plan/types.ts'

export const BOOT_MS = 90_000
export const DRAIN_MS = 30_000

export type FailKind = 'ice' | 'quota' | 'unavailable'

export interface Crash {
  /** Fraction (0..1) of the decision's entries that were committed. */
  keep: number
  /** Bit i: the old leader ran its i-th runnable action before it went. */
  ran: number
}

export class Violation extends Error {
  override name = 'Violation'
}

function fail (why: string): never {
  throw new Violation(why)
}

function errorOf (kind: FailKind, provider: string): Error {
  if (kind === 'ice') return new InsufficientCapacityError(provider, 'injected: no capacity')
  if (kind === 'quota') return new QuotaError(provider, 'injected: quota')
  return new ProviderUnavailableError(provider, 'injected: API down')
}

export class World {
  now: number
  readonly policy: Policy
  readonly providers = new Map<string, FakeProvider>()
  /** Keys whose node never boots. */
  readonly hung = new Set<string>()
  hangNext = false
  readonly killedAt = new Map<string, number>()
  readonly left = new Set<string>()
  readonly drainingSince = new Map<string, number>()
  readonly busy = new Map<string, number>()
  staticQps = 0
  staticQueue = 0
  /** Notices members announce, by key: an interrupted instance is taken by its provider at `at`. */
  readonly notices = new Map<string, { kind: 'rebalance' | 'interruption', at: number }>()

  // The shell's state.
  log: LedgerEntry[] = []
  ledger: LedgerState = emptyLedger()
  memory: LeaderMemory | undefined
  term = 1
  burstQueue: BurstRequest[] = []
  terminateQueue: TerminateRequest[] = []
  private requestSerial = 0
  private lastSpend: { total: number, today: number, month: number, at: number } = { total: 0, today: 0, month: 0, at: 0 }
  /** Stats, for the test's own sanity (the property must exercise things). */
  readonly stats = { decisions: 0, launches: 0, fallbacks: 0, launchFailures: 0, terminates: 0, drains: 0, crashes: 0, sheds: 0, adopted: 0, refusedOutcomes: 0, granted: 0, cut: 0, refused: 0, notices: 0, replacements: 0 }

  constructor (policy: Policy, offerings: Offering[], now: number) {
    this.policy = policy
    this.now = now
    for (const p of policy.providers) {
      this.providers.set(p.name, new FakeProvider({ name: p.name, kind: p.kind, cluster: policy.cluster, offerings: offerings.filter((o) => o.provider === p.name), now: () => this.now }))
    }
  }

  // -- the world ------------------------------------------------------------

  alive (): Instance[] {
    return [...this.providers.values()].flatMap((p) => p.alive()).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1))
  }

  pick (n: number): Instance | undefined {
    const all = this.alive()
    return all.length === 0 ? undefined : all[n % all.length]
  }

  members (): MemberObservation[] {
    const out: MemberObservation[] = [{
      id: 'static-1', name: 'static-1', state: 'alive', draining: false, lastSeenAt: this.now, provider: 'static', region: 'hel1', spot: false, costPerHour: 0, voter: true, instance: null,
      replica: { ready: true, models: ['m'], slots: 4, inflight: 0, queued: this.staticQueue, qps: this.staticQps }
    }]
    for (const i of this.alive()) {
      if (this.hung.has(i.key) || this.now - i.launchedAt < BOOT_MS) continue
      const killed = this.killedAt.get(i.key)
      const notice = this.notices.get(i.key)
      const drainStart = this.drainingSince.get(i.key)
      const draining = drainStart !== undefined
      const inflight = draining && this.now - drainStart >= DRAIN_MS ? 0 : this.busy.get(i.key) ?? 0
      out.push({
        id: `peer-${i.id}`,
        name: `burst-${i.key}`,
        state: killed !== undefined ? (this.now - killed >= 10_000 ? 'dead' : 'suspect') : this.left.has(i.key) ? 'left' : 'alive',
        draining,
        lastSeenAt: killed ?? this.now,
        provider: i.provider,
        region: i.region,
        spot: i.spot,
        costPerHour: i.pricePerHour,
        voter: false,
        instance: { provider: i.provider, id: i.id, key: i.key, launchedAt: i.launchedAt },
        replica: { ready: true, models: ['m'], slots: 4, inflight, queued: 0, qps: inflight > 0 ? 1 : 0 },
        ...(notice !== undefined ? { notice } : {})
      })
    }
    return out
  }

  /** The member of this spot instance announces a notice; an interruption drains it at once and takes it two minutes later. */
  notice (i: Instance, kind: 'rebalance' | 'interruption'): void {
    const had = this.notices.get(i.key)
    if (!i.spot || had?.kind === 'interruption') return
    this.notices.set(i.key, { kind, at: kind === 'interruption' ? this.now + 2 * 60_000 : this.now })
    if (kind === 'interruption' && !this.drainingSince.has(i.key)) this.drainingSince.set(i.key, this.now)
    this.stats.notices += 1
  }

  inject (provider: string, verb: 'create' | 'delete' | 'list' | 'offerings', kind: FailKind): void {
    this.providers.get(provider)?.failNext(verb, errorOf(kind, provider))
  }

  request (r: { count: number, provider?: string, spot?: boolean }): void {
    this.burstQueue.push({ id: `b${this.requestSerial++}`, ...r })
  }

  terminate (r: { count?: number, all?: boolean }): void {
    this.terminateQueue.push({ id: `t${this.requestSerial++}`, ...r })
  }

  /** An instance with this cluster's tag that the ledger never heard of. */
  async orphan (provider: string, match: (o: Offering) => boolean): Promise<void> {
    const p = this.providers.get(provider)
    if (p === undefined) return
    // At today's price: everyone on an offering pays its current price.
    const offering = (await p.offerings().catch(() => [])).find(match)
    if (offering === undefined) return
    this.requestSerial += 1
    const i: Instance = { id: `orphan-${this.requestSerial}`, key: `orphan-${this.requestSerial}`, provider, region: offering.region, spot: offering.spot, state: 'running', launchedAt: this.now, pricePerHour: offering.pricePerHour }
    if (offering.zone !== undefined) i.zone = offering.zone
    if (offering.instanceType !== undefined) i.instanceType = offering.instanceType
    p.seed(i)
  }

  // -- the shell ------------------------------------------------------------

  /** One round: observe, decide, check, commit, act. */
  async tick (crash: Crash | null): Promise<DecideResult> {
    // EC2 takes interrupted instances at their notice's time.
    for (const i of this.alive()) {
      const n = this.notices.get(i.key)
      if (n?.kind === 'interruption' && n.at <= this.now) this.providers.get(i.provider)!.interrupt(i.id)
    }
    let observedAll = true
    const prices: Offering[] = []
    const listings: ProviderListing[] = []
    for (const [name, p] of this.providers) {
      try { prices.push(...await p.offerings()) } catch { observedAll = false }
      try { listings.push({ provider: name, at: this.now, instances: await p.list() }) } catch { observedAll = false }
    }
    const observations = { term: this.term, members: this.members(), listings, burst: [...this.burstQueue], terminate: [...this.terminateQueue] }
    const before = this.ledger
    const input = { observations, ledger: before, policy: this.policy, prices, now: this.now, memory: this.memory }
    const r = decide(input)
    const again = decide(input)
    if (!isDeepStrictEqual(r, again)) fail('decide() is not deterministic')
    this.checkDecision(before, r, prices)
    this.stats.decisions += 1

    const answered = new Set(r.answers.map((a) => a.id))
    if (process.env.MESHD_SIM_DEBUG !== undefined) for (const l of r.lines) console.error(l)
    for (const a of r.answers) this.stats[a.decision] += 1
    if (crash === null) {
      this.commitAll(r.entries)
      if (!isDeepStrictEqual(this.ledger, r.ledger)) fail('a peer applying the entries holds another ledger than the leader')
      this.memory = r.memory
      this.burstQueue = this.burstQueue.filter((q) => !answered.has(q.id))
      this.terminateQueue = this.terminateQueue.filter((q) => !answered.has(q.id))
      for (const a of r.actions) {
        const out = await this.run(a)
        for (const e of out) {
          const ok = applyChecked(this.ledger, e)
          if (ok.ok) { this.ledger = ok.state; this.log.push(e) } else this.stats.refusedOutcomes += 1
        }
      }
      if (observedAll) this.checkAccounted()
    } else {
      // The leader goes mid-decision: a prefix commits, some actions ran, their outcomes are lost.
      this.stats.crashes += 1
      const k = Math.min(r.entries.length, Math.floor(crash.keep * (r.entries.length + 1)))
      const committed = r.entries.slice(0, k)
      this.commitAll(committed)
      const runnable = r.actions.filter((a) => r.entries.every((e, i) => i < k || !('key' in e) || e.key !== a.key))
      for (let i = 0; i < runnable.length; i++) if ((crash.ran >> i) & 1) await this.run(runnable[i]!)
      this.term += 1
      this.memory = undefined
      // The CLI retries what was not answered in the committed log.
      const rebuilt = rebuild(this.log)
      if (!isDeepStrictEqual(rebuilt, this.ledger)) fail('the committed log does not rebuild the ledger')
      this.burstQueue = this.burstQueue.filter((q) => rebuilt.requests[q.id] === undefined)
      this.terminateQueue = this.terminateQueue.filter((q) => rebuilt.requests[q.id] === undefined)
    }
    this.checkWorld()
    return r
  }

  /** Commits entries as peers receive them: through JSON and parseEntry. */
  private commitAll (entries: readonly LedgerEntry[]): void {
    for (const sent of entries) {
      const p = parseEntry(JSON.parse(JSON.stringify(sent)))
      if (!p.ok) fail(`an entry of decide() does not parse on a peer: ${p.error}`)
      const e = p.entry
      const ok = applyChecked(this.ledger, e)
      if (!ok.ok) fail(`a committed entry of decide() was refused: ${ok.why}`)
      this.ledger = ok.state
      this.log.push(e)
    }
  }

  /** Runs one action against the providers; returns the entries to record. */
  private async run (a: Action): Promise<LedgerEntry[]> {
    if (a.op === 'drain') {
      this.stats.drains += 1
      if (!this.drainingSince.has(a.key)) this.drainingSince.set(a.key, this.now)
      return []
    }
    if (a.op === 'terminate') {
      this.stats.terminates += 1
      const p = this.providers.get(a.provider)
      if (p === undefined) return []
      let id = a.id
      if (id === null) {
        try { id = (await p.list()).find((i) => i.key === a.key)?.id ?? null } catch { return [] }
        if (id === null) return []
      }
      try {
        await p.delete(id)
        return []
      } catch (e) {
        const out = isNotFoundError(e) ? terminateOutcome(a.key, e, this.term, this.now) : null
        return out === null ? [] : [out]
      }
    }
    this.stats.launches += 1
    // The launcher the burst service runs (daemon/leader/launcher.ts), on the fake providers.
    const out: LedgerEntry[] = []
    await launch(a, {
      providers: this.providers,
      policy: this.policy,
      term: this.term,
      peers: [],
      now: () => this.now,
      leading: () => true,
      record: (entries) => { out.push(...entries) },
      ...(process.env.MESHD_SIM_DEBUG !== undefined ? { log: { info: (_: object, m: string) => { console.error(m) }, warn: (o: object, m: string) => { console.error(m, o) } } } : {})
    })
    if (this.hangNext && out.some((e) => e.type === 'instance.launched')) { this.hung.add(a.key); this.hangNext = false }
    if (out.some((e) => e.type === 'instance.launched' && e.refused !== undefined)) this.stats.fallbacks += 1
    if (out.some((e) => e.type === 'instance.state' && e.state === 'failed')) this.stats.launchFailures += 1
    return out
  }

  // -- invariants -----------------------------------------------------------

  /** What must hold of every decision, before anything of it is committed. */
  private checkDecision (before: LedgerState, r: DecideResult, prices: readonly Offering[]): void {
    const b = this.policy.burst
    const budget = micros(b.costBudget)
    const maxOf = new Map(this.policy.providers.map((p) => [p.name, p.maxInstances]))
    if (r.waiting !== null) {
      if (r.entries.length > 0 || r.actions.length > 0) fail('a waiting decide() did something')
      return
    }
    // Determinism of the record: its entries rebuild its ledger.
    if (!isDeepStrictEqual(rebuild(r.entries, before), r.ledger)) fail('decide()\'s entries do not rebuild its ledger')

    // (1) After every decision, live + pending burst capacity is within cost_budget.
    if (micros(projectedPerHour(r.ledger)) > budget) fail(`projected ${projectedPerHour(r.ledger)}/h > cost_budget ${b.costBudget}/h after a decision`)

    // (2) Counts kept (live, not draining) are within max_cloud_instances and each provider's max_instances.
    const kept = records(r.ledger).filter((x) => isLive(x) && x.state !== 'draining')
    if (kept.length > b.maxCloudInstances) fail(`${kept.length} kept > max_cloud_instances ${b.maxCloudInstances}`)
    for (const [name, max] of maxOf) {
      const n = kept.filter((x) => x.provider === name).length
      if (n > max) fail(`${n} kept on ${name} > max_instances ${max}`)
    }

    // (3) Intent first: at the moment each intent would commit (any prefix of
    // the entries), everything that may bill, that intent included, fits.
    // (8) Preempted zones are avoided while others exist: a spot intent in a
    // zone that saw an interruption recently, while the same provider offered
    // spot in another zone, available, not refused for capacity, at no more.
    let s = before
    for (const e of r.entries) {
      const prior = s
      s = applyChecked(s, e).state
      if (e.type !== 'instance.intent') continue
      if (e.offering.spot) {
        const burnt = preempted(prior, this.now, b.preemptionMemoryMs)
        const refused = capacityRefused(prior, this.now, b.capacityErrorTtlMs)
        if (burnt.zones.has(zoneKey(e.offering))) {
          const better = prices.find((o) => o.provider === e.offering.provider && o.spot && o.available && !refused.has(offeringId(o)) && !burnt.zones.has(zoneKey(o)) && micros(o.pricePerHour) <= micros(e.pricePerHour))
          if (better !== undefined) fail(`intent ${e.key} in preempted zone ${zoneKey(e.offering)} while ${offeringId(better)} was free of preemptions at no more`)
        }
      }
      if (e.replaces !== undefined && getRecord(prior, e.replaces)?.notice != null) this.stats.replacements += 1
      const billing = records(s).filter(mayBill)
      const m = billing.reduce((a, x) => a + micros(x.pricePerHour), 0)
      if (m > budget) fail(`intent ${e.key}: ${m / 1e6}/h may bill > cost_budget ${b.costBudget}/h`)
      if (billing.length > b.maxCloudInstances) fail(`intent ${e.key}: ${billing.length} may bill > max_cloud_instances`)
      const onIt = billing.filter((x) => x.provider === e.offering.provider).length
      if (onIt > (maxOf.get(e.offering.provider) ?? 0)) fail(`intent ${e.key}: ${onIt} on ${e.offering.provider} > its max_instances`)
    }

    // (4) No key launched twice: launches only for keys still provisioning,
    // without an instance, and each key is an intent only once.
    const intents = r.entries.filter((e) => e.type === 'instance.intent').map((e) => e.key)
    if (new Set(intents).size !== intents.length) fail('an intent key twice in one decision')
    for (const k of intents) if (getRecord(before, k) !== undefined) fail(`intent for a key already in the ledger: ${k}`)
    for (const a of r.actions) {
      if (a.op !== 'launch') continue
      const rec = getRecord(r.ledger, a.key)
      if (rec === undefined || rec.state !== 'provisioning' || rec.id !== null) fail(`launch of ${a.key} which is ${rec?.state ?? 'unknown'}${rec?.id == null ? '' : ` as ${rec.id}`}`)
      for (const o of a.fallbacks) if (micros(o.pricePerHour) > micros(rec.pricePerHour)) fail(`fallback dearer than the reservation for ${a.key}`)
    }
    if (r.actions.filter((a) => a.op === 'launch').length !== new Set(r.actions.filter((a) => a.op === 'launch').map((a) => a.key)).size) fail('two launches of one key in one decision')

    // (9) One replacement per notice: of the launches for an instance under a
    // notice, at most one that did not fail outright.
    for (const x of records(r.ledger)) {
      if (x.notice === null) continue
      const replacements = records(r.ledger).filter((y) => y.replaces === x.key && y.state !== 'failed')
      if (replacements.length > 1) fail(`${replacements.length} replacements for the notice of ${x.key}: ${replacements.map((y) => y.key).join(', ')}`)
    }

    // (5) Answers are consistent.
    for (const a of r.answers) {
      if (a.granted > a.requested && a.requested > 0) fail(`granted ${a.granted} > requested ${a.requested}`)
      if (a.instances.length !== a.granted) fail('answer instances ≠ granted')
      const expected = a.granted === 0 ? 'refused' : a.granted < a.requested ? 'cut' : 'granted'
      if (a.decision !== expected) fail(`answer ${a.decision} for ${a.granted}/${a.requested}`)
      if (a.reason.length === 0) fail('an answer without a reason')
    }
    if (r.lines.some((l) => l.length === 0)) fail('an empty log line')
  }

  /** After a full round with everything observed: every instance that runs is in the ledger at its price. */
  private checkAccounted (): void {
    const world = this.alive()
    for (const i of world) {
      const rec = getRecord(this.ledger, i.key)
      if (rec === undefined) fail(`instance ${i.id} (${i.key}) runs, unknown to the ledger`)
      if (!mayBill(rec)) fail(`instance ${i.id} (${i.key}) runs, the ledger says ${rec.state}`)
      if (micros(rec.pricePerHour) !== micros(i.pricePerHour)) fail(`instance ${i.id} (${i.key}) bills ${i.pricePerHour}/h, the ledger charges ${rec.pricePerHour}/h`)
    }
  }

  /** What must hold of the world and the committed ledger after every round. */
  private checkWorld (): void {
    // One instance per key at most.
    const keys = this.alive().map((i) => i.key)
    if (new Set(keys).size !== keys.length) fail('two instances alive under one key')
    for (const p of this.providers.values()) for (const [k, n] of p.createdPerKey) if (n > 1) fail(`key ${k} launched ${n} times`)
    // Spend so far never goes down.
    const s = spend(this.ledger, this.now)
    const prev = this.lastSpend
    const eps = 1e-9
    if (s.total < prev.total - eps) fail(`total spend went down: ${prev.total} → ${s.total}`)
    if (dayStartUtc(this.now) === dayStartUtc(prev.at) && s.today < prev.today - eps) fail(`today's spend went down: ${prev.today} → ${s.today}`)
    if (monthStartUtc(this.now) === monthStartUtc(prev.at) && s.month < prev.month - eps) fail(`this month's spend went down: ${prev.month} → ${s.month}`)
    this.lastSpend = { ...s, at: this.now }
  }
}
