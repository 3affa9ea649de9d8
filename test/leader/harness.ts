/**
 * A leader in a test: holds the committed ledger and the leader's memory,
 * calls decide() and commits its entries the way the shell will (all of
 * them, before anything else happens), and records launcher outcomes.
 */
import { isDeepStrictEqual } from 'node:util'
import type { Instance, Offering } from '../../providers/types.ts'
import { decide, type DecideResult } from '../../daemon/leader/plan/decide.ts'
import { applyChecked, emptyLedger, getRecord, rebuild, type InstanceRecord, type LedgerState } from '../../daemon/leader/ledger/ledger.ts'
import type { LedgerEntry } from '../../daemon/leader/ledger/entries.ts'
import type { LeaderMemory } from '../../daemon/leader/plan/memory.ts'
import { launchedOutcome } from '../../daemon/leader/plan/outcomes.ts'
import type { Observations, Policy } from '../../daemon/leader/plan/types.ts'
import { obs } from './fixtures.ts'

export class Harness {
  ledger: LedgerState = emptyLedger()
  memory: LeaderMemory | undefined
  term = 1
  policy: Policy
  prices: Offering[]
  /** Every committed entry, in order. */
  readonly log: LedgerEntry[] = []

  constructor (policy: Policy, prices: Offering[]) {
    this.policy = policy
    this.prices = prices
  }

  /** decide(), then commit its entries. Throws if re-applying them does not give decide()'s own ledger. */
  decide (now: number, o: Partial<Observations> = {}): DecideResult {
    const r = decide({ observations: obs({ ...o, term: this.term }), ledger: this.ledger, policy: this.policy, prices: this.prices, now, memory: this.memory })
    const applied = rebuild(r.entries, this.ledger)
    if (!isDeepStrictEqual(applied, r.ledger)) throw new Error('decide(): its entries do not rebuild its ledger')
    this.ledger = applied
    this.log.push(...r.entries)
    this.memory = r.memory
    return r
  }

  /** Commits an entry the launcher would record; throws if the ledger refuses it. */
  commit (e: LedgerEntry): void {
    const r = applyChecked(this.ledger, e)
    if (!r.ok) throw new Error(`refused: ${r.why}`)
    this.ledger = r.state
    this.log.push(e)
  }

  /** The launcher's create succeeded. */
  launched (key: string, id: string, now: number, over: Partial<Instance> = {}): Instance {
    const rec = this.rec(key)
    const instance: Instance = { id, key, provider: rec.provider, region: rec.offering.region, spot: rec.offering.spot, state: 'running', launchedAt: now, pricePerHour: rec.pricePerHour, ...over }
    if (rec.offering.zone !== undefined) instance.zone = rec.offering.zone
    this.commit(launchedOutcome(key, instance, rec.offering, [], this.term, now))
    return instance
  }

  rec (key: string): InstanceRecord {
    const r = getRecord(this.ledger, key)
    if (r === undefined) throw new Error(`no record ${key}`)
    return r
  }

  state (key: string): string {
    return this.rec(key).state
  }

  /** A new leader: the next term, an empty memory, the same committed ledger. */
  newLeader (): void {
    this.term += 1
    this.memory = undefined
  }
}
