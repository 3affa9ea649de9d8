/**
 * The leader's cycle, around the pure decide() (plan/decide.ts):
 *
 *   observe (members, each provider's list and offerings)
 *   → decide → record the entries in the replicated log (wait for commit)
 *   → act (provider calls, drains), only while still the acting leader
 *   → record the outcomes.
 *
 * Runs every burst.check_interval while this node leads (Coordination calls
 * lead() and follow() on leader changes) and at once when a request arrives. Only
 * the acting leader (Raft leader with a live lease) decides; `meshd burst`
 * on any other node travels to it over the mesh. One decision is in flight
 * at a time, so a ledger that does not yet show the last intents is never
 * decided on (decide() enforces it too).
 */
import {
  decide, memoryFor, observeMember, projectedPerHour, spend, terminateOutcome,
  getRecord, type Action, type Answer, type BurstRequest, type LeaderMemory, type LedgerEntry, type Policy, type ProviderListing,
  type TerminateRequest, type DecisionTally
} from './index.ts'
import { isNotFoundError, type Offering, type Provider } from '../../providers/types.ts'
import type { Membership } from '../../mesh/membership/service.ts'
import { launch, withTimeout, type LaunchCounters } from './launcher.ts'
import { ledgerCommand, type LedgerReplica } from './ledger-replica.ts'
import { CtlError, type Ctl } from '../../mesh/ctl/rpc.ts'

export interface BurstServiceInit {
  selfId: string
  policy: Policy
  /** Providers' API calls that take longer are abandoned for this round. */
  providerTimeoutMs?: number
}

/**
 * What the service needs of the election (daemon/election's Election is one):
 * whether this node may act as the leader now (leader, lease live, own-term
 * entry committed), its term, and committing a command to the replicated log.
 */
export interface LeaderGate {
  isActingLeader: () => boolean
  status: () => { term: number }
  /** Resolves once the command is committed and applied here; rejects if it may not have been. */
  propose: (command: unknown) => Promise<unknown>
}

export interface BurstServiceComponents {
  election: LeaderGate
  /** The committed ledger (applied on every voter). */
  ledger: Pick<LedgerReplica, 'state'>
  membership: Pick<Membership, 'members'>
  providers: ReadonlyMap<string, Provider>
  /** Drains go to members over the control protocol. */
  ctl: Pick<Ctl, 'call'>
  log: { info: (o: object, msg: string) => void, warn: (o: object, msg: string) => void, debug: (o: object, msg: string) => void }
  /** Decisions, once committed, and provider create calls are counted here (daemon/leader/metrics.ts). */
  metrics?: BurstMetrics
}

export interface BurstMetrics extends LaunchCounters {
  decided: (d: DecisionTally) => void
}

interface Waiter { resolve: (a: Answer) => void, reject: (e: Error) => void }

export interface RecordView { key: string, state: string, reason: string, provider: string, id: string | null, member: string | null }

const REQUEST_TIMEOUT_MS = 60_000
/** Default limits on provider calls: create and delete may take a while (a cloud API), list and offerings should not. */
const CALL_TIMEOUT_MS = 60_000
const READ_TIMEOUT_MS = 30_000

export class BurstService {
  private readonly init: BurstServiceInit
  private readonly c: BurstServiceComponents
  private readonly bursts: BurstRequest[] = []
  private readonly terminates: TerminateRequest[] = []
  private readonly waiters = new Map<string, Waiter>()
  private memory: LeaderMemory | undefined
  private timer: NodeJS.Timeout | undefined
  private current: Promise<void> | undefined
  private running = false
  private again = false
  private stopped = false

  constructor (init: BurstServiceInit, components: BurstServiceComponents) {
    this.init = init
    this.c = components
  }

  /** This node became the leader: run the cycle every check_interval, and once now. */
  lead (): void {
    if (this.stopped) return
    if (this.timer === undefined) this.timer = setInterval(() => { this.kick() }, Math.max(1000, this.init.policy.burst.checkIntervalMs))
    // A new leader may act once its own-term entry commits: give that a moment.
    setTimeout(() => { if (this.timer !== undefined) this.kick() }, 100).unref()
  }

  /** Another node leads (or none): no more cycles; the memory goes, as do the requests waiting here. */
  follow (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.memory = undefined
    this.rejectAll('not_leader', 'this node is no longer the leader')
  }

  /** Whether the cycle runs (this node leads). */
  get leading (): boolean {
    return this.timer !== undefined
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    this.timer = undefined
    this.rejectAll('stopping', 'the leader is stopping')
  }

  /** A burst or terminate request, on the leader. Resolves with its answer once the decision is committed. */
  request (req: { kind: 'burst', body: BurstRequest } | { kind: 'terminate', body: TerminateRequest }): Promise<Answer> {
    if (!this.c.election.isActingLeader()) return Promise.reject(new CtlError('not_leader', 'this node is not the acting leader'))
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(req.body.id)
        reject(new CtlError('timeout', `no decision within ${REQUEST_TIMEOUT_MS / 1000} s`))
      }, REQUEST_TIMEOUT_MS)
      this.waiters.set(req.body.id, {
        resolve: (a) => { clearTimeout(timer); resolve(a) },
        reject: (e) => { clearTimeout(timer); reject(e) }
      })
      if (req.kind === 'burst') this.bursts.push(req.body)
      else this.terminates.push(req.body)
      this.kick()
    })
  }

  /** The ledger's view of some instances (for `burst --wait`). */
  watch (keys: string[]): RecordView[] {
    const members = this.c.membership.members()
    return keys.map((key) => {
      const r = getRecord(this.c.ledger.state, key)
      const member = members.find((m) => m.heartbeat.instance?.key === key)
      return r === undefined
        ? { key, state: 'unknown', reason: 'not in the ledger', provider: '', id: null, member: member?.id ?? null }
        : { key, state: r.state, reason: r.reason, provider: r.provider, id: r.id, member: member?.id ?? null }
    })
  }

  /** Budget figures for `status` (any voter: the ledger is replicated). */
  budget (): { cost_budget: number, spend_per_hour: number, spend_today: number, spend_month: number } {
    const s = spend(this.c.ledger.state, Date.now())
    return {
      cost_budget: this.init.policy.burst.costBudget,
      spend_per_hour: round(projectedPerHour(this.c.ledger.state)),
      spend_today: round(s.today),
      spend_month: round(s.month)
    }
  }

  /** Runs a decision cycle now, or right after the one in progress. */
  kick (): void {
    if (this.stopped) return
    if (this.running) { this.again = true; return }
    this.running = true
    this.current = this.cycle().catch((err: unknown) => {
      this.c.log.warn({ err }, 'leader cycle failed')
    }).finally(() => {
      this.running = false
      if (this.again) { this.again = false; setTimeout(() => { this.kick() }, 50) }
    })
  }

  /** Resolves once the cycle in progress, if any, has finished (its outcomes proposed). */
  async settled (): Promise<void> {
    await this.current
  }

  private async cycle (): Promise<void> {
    const election = this.c.election
    if (!election.isActingLeader()) {
      this.rejectAll('not_leader', 'this node is no longer the acting leader')
      return
    }
    const term = election.status().term
    const [listings, prices] = await Promise.all([this.listings(), this.offerings()])
    if (!election.isActingLeader()) return
    const now = Date.now()
    const bursts = this.bursts.splice(0)
    const terminates = this.terminates.splice(0)
    const r = decide({
      observations: {
        term,
        members: this.c.membership.members().map(observeMember),
        listings,
        burst: bursts,
        terminate: terminates
      },
      ledger: this.c.ledger.state,
      policy: this.init.policy,
      prices,
      now,
      memory: memoryFor(this.memory, term, now)
    })
    if (r.waiting !== null) {
      // The last decision is not in the ledger yet: keep the requests for the next round.
      this.bursts.unshift(...bursts)
      this.terminates.unshift(...terminates)
      this.again = true
      return
    }
    this.memory = r.memory
    for (const line of r.lines) this.c.log.info({ term }, line)
    if (r.entries.length > 0) {
      try {
        await election.propose(ledgerCommand(r.entries))
      } catch (err) {
        this.c.log.warn({ err: (err as Error).message }, 'decision not committed; nothing acted upon')
        this.memory = undefined
        for (const b of bursts) this.waiters.get(b.id)?.reject(new CtlError('not_committed', `the decision was not committed: ${(err as Error).message}`))
        for (const b of terminates) this.waiters.get(b.id)?.reject(new CtlError('not_committed', `the decision was not committed: ${(err as Error).message}`))
        return
      }
    }
    for (const d of r.decisions) this.c.metrics?.decided(d)
    for (const a of r.answers) {
      const w = this.waiters.get(a.id)
      if (w !== undefined) { this.waiters.delete(a.id); w.resolve(a) }
    }
    if (r.actions.length === 0 || !election.isActingLeader()) return
    const outcomes = (await Promise.all(r.actions.map(async (a) => this.act(a, term, listings)))).flat()
    if (outcomes.length > 0 && election.isActingLeader()) {
      try {
        await election.propose(ledgerCommand(outcomes))
      } catch (err) {
        // The launches happened; the next leader finds them by their keys in list().
        this.c.log.warn({ err: (err as Error).message }, 'outcomes not committed; reconciliation will find them')
      }
    }
  }

  /** Runs one action; returns the ledger entries that record its outcome. `listings` are this cycle's provider lists. */
  private async act (a: Action, term: number, listings: readonly ProviderListing[]): Promise<LedgerEntry[]> {
    if (!this.c.election.isActingLeader()) return []
    if (a.op === 'launch') {
      const outcomes: LedgerEntry[] = []
      await launch(a, {
        providers: this.c.providers,
        policy: this.init.policy,
        term,
        peers: this.peers(),
        now: Date.now,
        leading: () => this.c.election.isActingLeader(),
        record: (entries) => { outcomes.push(...entries) },
        timeoutMs: this.init.providerTimeoutMs ?? CALL_TIMEOUT_MS,
        log: this.c.log,
        ...(this.c.metrics !== undefined ? { counters: this.c.metrics } : {})
      })
      return outcomes
    }
    if (a.op === 'drain') {
      if (a.member === null) return []
      try {
        await this.c.ctl.call(a.member, { type: 'drain', reason: a.reason }, 10_000)
        this.c.log.info({ key: a.key, member: a.member, reason: a.reason }, `draining ${a.key}`)
      } catch (err) {
        this.c.log.warn({ key: a.key, err: (err as Error).message }, 'drain request failed (retried next round)')
      }
      return []
    }
    const provider = this.c.providers.get(a.provider)
    if (provider === undefined) return []
    let id = a.id
    try {
      if (id === null) {
        // Launched but never confirmed: find it by its key in this cycle's list.
        // Not listed (or the list failed): nothing to delete now; the create may
        // still be in flight, so reconciliation, not this call, settles the record.
        const found = listings.find((l) => l.provider === provider.name)?.instances.find((i) => i.key === a.key)
        if (found === undefined) return []
        id = found.id
      }
      await withTimeout(provider.delete(id), this.init.providerTimeoutMs ?? CALL_TIMEOUT_MS, `delete ${id}`)
      this.c.log.info({ key: a.key, id, reason: a.reason }, `terminating ${a.key}`)
      return []
    } catch (err) {
      if (!isNotFoundError(err)) this.c.log.warn({ key: a.key, err: (err as Error).message }, 'terminate failed (retried)')
      return orNone(terminateOutcome(a.key, err, term, Date.now()))
    }
  }

  private async listings (): Promise<ProviderListing[]> {
    const out: ProviderListing[] = []
    await Promise.all([...this.c.providers.values()].map(async (p) => {
      const at = Date.now()
      try {
        out.push({ provider: p.name, at, instances: await withTimeout(p.list(), this.init.providerTimeoutMs ?? READ_TIMEOUT_MS, `${p.name} list`) })
      } catch (err) {
        this.c.log.debug({ provider: p.name, err: (err as Error).message }, 'provider list failed; not reconciled this round')
      }
    }))
    return out
  }

  private async offerings (): Promise<Offering[]> {
    const all = await Promise.all([...this.c.providers.values()].map(async (p) => {
      try {
        return await withTimeout(p.offerings(), this.init.providerTimeoutMs ?? READ_TIMEOUT_MS, `${p.name} offerings`)
      } catch (err) {
        this.c.log.debug({ provider: p.name, err: (err as Error).message }, 'provider offerings failed')
        return []
      }
    }))
    return all.flat()
  }

  /** Addresses a launched node dials to join: a few alive voters (ourselves first). */
  private peers (): string[] {
    const ms = this.c.membership.members().filter((m) => m.state === 'alive' && m.heartbeat.voter)
    ms.sort((a, b) => (a.id === this.init.selfId ? -1 : b.id === this.init.selfId ? 1 : 0))
    return ms.slice(0, 5).flatMap((m) => m.heartbeat.addrs.slice(0, 2).map((a) => a.includes('/p2p/') ? a : `${a}/p2p/${m.id}`))
  }

  private rejectAll (code: string, message: string): void {
    for (const w of this.waiters.values()) w.reject(new CtlError(code, message))
    this.waiters.clear()
    this.bursts.length = 0
    this.terminates.length = 0
  }
}

function orNone<T> (x: T | null): T[] {
  return x === null ? [] : [x]
}

function round (x: number): number {
  return Math.round(x * 10_000) / 10_000
}
