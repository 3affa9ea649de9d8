/**
 * The simulation's invariants, checked as the run goes (not only at the
 * end), so a violation is reported at the event that caused it:
 *
 * - lease safety: at no real instant do two nodes say isActingLeader(local now);
 * - complete ledger: an acting leader's commit index covers every entry any
 *   node has applied (it decides on the whole ledger);
 * - election safety: at most one leader per term;
 * - state-machine safety: no two nodes apply different entries at an index,
 *   and each node applies in order with no gaps;
 * - leader completeness: a new leader's log holds every entry committed in
 *   an earlier term;
 * - no node truncates an entry it has applied;
 * - log matching: same index and term ⇒ identical prefixes (periodically);
 * - liveness: while a majority of the voters is up and connected, an acting
 *   leader shows up at least once per `livenessBoundMs`.
 */
import type { Entry } from '../raft/types.ts'

export class SimViolation extends Error {
  override name = 'SimViolation'
}

/** A failed run: the violation (or crash) with the seed and the run's trace, if it kept one. */
export class SimFailure extends Error {
  override name = 'SimFailure'
  readonly seed: number
  readonly trace: readonly string[]

  constructor (seed: number, cause: unknown, trace: readonly string[]) {
    super(cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause), { cause })
    this.seed = seed
    this.trace = trace
  }
}

const fingerprints = new WeakMap<Entry, string>()

export function fingerprint (e: Entry): string {
  let f = fingerprints.get(e)
  if (f === undefined) {
    f = `${e.term}|${e.kind}|${JSON.stringify(e.data)}`
    fingerprints.set(e, f)
  }
  return f
}

/** What the checker needs to see of a node at an instant. */
export interface NodeView {
  id: string
  acting: boolean
  role: string
  term: number
  commitIndex: number
  log: () => Entry[]
}

export class Checker {
  /** Fingerprint of the entry applied at each index (index 0 unused). */
  readonly committed: string[] = ['']
  /**
   * An upper bound on the term in which each index was committed: the term
   * of the first node to apply it (the committing leader applies its own
   * commits before anyone hears of them; a term change before its shell ran
   * only raises the bound). Leader completeness binds leaders of later terms.
   */
  private readonly commitTerm: number[] = [0]
  private readonly applied = new Map<string, number>()
  private readonly leaderOfTerm = new Map<number, string>()
  private readonly leaderSeen = new Set<string>()
  lastActingAt = 0
  actingSince: { id: string, at: number } | null = null
  /** Term → real time at which its leader first acted; for failover statistics. */
  readonly firstActing: Array<{ id: string, term: number, at: number }> = []
  private lastActingKey = ''

  get committedMax (): number { return this.committed.length - 1 }

  appliedIndex (id: string): number { return this.applied.get(id) ?? 0 }

  /** The node's state machine was rebuilt from scratch (restart with applied = 0). */
  resetApplied (id: string): void { this.applied.set(id, 0) }

  setApplied (id: string, index: number): void { this.applied.set(id, index) }

  onApply (id: string, entries: readonly Entry[], at: number, term: number): void {
    let last = this.applied.get(id) ?? 0
    for (const e of entries) {
      if (e.index !== last + 1) throw new SimViolation(`${id} applied index ${e.index} after ${last} at t=${at.toFixed(1)}`)
      const f = fingerprint(e)
      const have = this.committed[e.index]
      if (have === undefined) {
        this.committed.push(f)
        this.commitTerm.push(term)
      } else if (have !== f) {
        throw new SimViolation(`state-machine safety: ${id} applied ${f} at index ${e.index}, another node applied ${have} (t=${at.toFixed(1)})`)
      }
      last = e.index
    }
    this.applied.set(id, last)
  }

  /**
   * A node is about to delete its persisted entries from `from` on: never
   * one it has applied. (A node may legitimately drop an entry that others
   * committed in a term it has not reached yet, when a message from an
   * intermediate term reaches it first — its copy was not one the commit
   * counted. What must hold is that every later leader has the entry, which
   * afterEvent checks, and that no node applies anything else there.)
   */
  onTruncate (id: string, from: number, at: number): void {
    if (from <= (this.applied.get(id) ?? 0)) throw new SimViolation(`${id} truncates applied index ${from} (t=${at.toFixed(1)})`)
  }

  /** Called after every event with every live node's view at that real instant. */
  afterEvent (nodes: readonly NodeView[], at: number): void {
    let acting: NodeView | undefined
    for (const n of nodes) {
      if (n.acting) {
        if (acting !== undefined) throw new SimViolation(`lease safety: ${acting.id} (term ${acting.term}) and ${n.id} (term ${n.term}) both acting at t=${at.toFixed(3)}`)
        acting = n
      }
      if (n.role === 'leader') {
        const other = this.leaderOfTerm.get(n.term)
        if (other === undefined) this.leaderOfTerm.set(n.term, n.id)
        else if (other !== n.id) throw new SimViolation(`election safety: ${other} and ${n.id} both leaders of term ${n.term} (t=${at.toFixed(1)})`)
        const key = `${n.id}@${n.term}`
        if (!this.leaderSeen.has(key)) {
          this.leaderSeen.add(key)
          this.checkCompleteness(n, at)
        }
      }
    }
    if (acting !== undefined) {
      this.lastActingAt = at
      if (acting.commitIndex < this.committedMax) throw new SimViolation(`complete ledger: acting leader ${acting.id} has commit ${acting.commitIndex} but index ${this.committedMax} was applied (t=${at.toFixed(1)})`)
      const key = `${acting.id}@${acting.term}`
      if (key !== this.lastActingKey) {
        this.lastActingKey = key
        if (!this.firstActing.some(f => f.term === acting.term)) this.firstActing.push({ id: acting.id, term: acting.term, at })
      }
    }
  }

  private checkCompleteness (n: NodeView, at: number): void {
    const log = n.log()
    for (let i = 1; i <= this.committedMax; i++) {
      if (this.commitTerm[i]! >= n.term) continue
      const e = log[i - 1]
      if (e === undefined || fingerprint(e) !== this.committed[i]) {
        throw new SimViolation(`leader completeness: ${n.id} leads term ${n.term} without applied entry ${i} (${this.committed[i]}); has ${e === undefined ? 'nothing' : fingerprint(e)} (t=${at.toFixed(1)})`)
      }
    }
  }

  /** Log matching over all pairs: if two logs agree on an index's term, they agree on everything before it. */
  checkLogMatching (logs: ReadonlyArray<{ id: string, log: Entry[] }>, at: number): void {
    // Chain each log: key (index, term) → hash of the whole prefix. Two logs
    // with the same key must have the same prefix hash.
    const seen = new Map<string, { id: string, h: string }>()
    for (const { id, log } of logs) {
      let h = 0x811c9dc5
      for (const e of log) {
        h = fnv(h, fingerprint(e))
        const key = `${e.index}:${e.term}`
        const hs = `${h}:${e.index}`
        const other = seen.get(key)
        if (other === undefined) seen.set(key, { id, h: hs })
        else if (other.h !== hs) throw new SimViolation(`log matching: ${other.id} and ${id} both have term ${e.term} at index ${e.index} but different prefixes (t=${at.toFixed(1)})`)
      }
    }
  }
}

function fnv (h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0
  return Math.imul(h ^ 0xff, 0x01000193) >>> 0
}
