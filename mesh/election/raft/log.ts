/**
 * The in-memory Raft log and its bookkeeping for the shell: which suffix is
 * not yet persisted (so Ready can say exactly what to truncate and append),
 * and where the config entries are (a config takes effect as soon as it is
 * in the log, so the current voter set is the latest config entry, committed
 * or not, and a truncation can roll it back).
 *
 * No compaction: the log starts at index 1 and is kept whole. The ledger is
 * low-rate, so this is years of decisions before it matters; snapshots would
 * add an install-snapshot message and a base index here.
 */
import type { ConfigData, Entry } from './types.ts'

export class LogError extends Error {
  override name = 'LogError'
}

export class RaftLog {
  private readonly entries: Entry[] = []
  /** Indexes of config entries, ascending. */
  private readonly configIndexes: number[] = []
  /** Entries with index >= this have not been handed to the shell yet. */
  private unstableFrom: number
  /** The shell must delete persisted entries >= this before appending. */
  private pendingTruncate: number | undefined
  /** The last index the shell holds durably (as of the last drain). */
  private persistedLast: number

  constructor (persisted: readonly Entry[]) {
    let prevTerm = 0
    for (const [i, e] of persisted.entries()) {
      if (e.index !== i + 1) throw new LogError(`log entry ${i} has index ${e.index}, want ${i + 1}`)
      if (!(Number.isSafeInteger(e.term) && e.term >= prevTerm && e.term >= 1)) throw new LogError(`log entry ${e.index} has term ${e.term} after term ${prevTerm}`)
      prevTerm = e.term
      this.push(e)
    }
    this.persistedLast = this.entries.length
    this.unstableFrom = this.entries.length + 1
  }

  lastIndex (): number { return this.entries.length }

  lastTerm (): number { return this.entries[this.entries.length - 1]?.term ?? 0 }

  /** The term at index i; 0 at index 0; undefined past the end. */
  term (i: number): number | undefined {
    if (i === 0) return 0
    return this.entries[i - 1]?.term
  }

  entry (i: number): Entry | undefined { return this.entries[i - 1] }

  /** Entries from..to inclusive, at most max of them. */
  slice (from: number, to: number, max = Infinity): Entry[] {
    const end = Math.min(to, from + max - 1, this.entries.length)
    return from > end ? [] : this.entries.slice(from - 1, end)
  }

  /** The thesis's "at least as up-to-date" order on (lastTerm, lastIndex). */
  isUpToDate (lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm() || (lastTerm === this.lastTerm() && lastIndex >= this.lastIndex())
  }

  /** The first index of the run of `term` that contains index i. */
  firstIndexOfTermAt (i: number): number {
    const t = this.term(i)
    let j = i
    while (j > 1 && this.term(j - 1) === t) j--
    return j
  }

  /** The last index ≤ atOrBefore whose term is `term`, or 0. */
  lastIndexOfTerm (term: number, atOrBefore: number): number {
    for (let j = Math.min(atOrBefore, this.entries.length); j >= 1; j--) {
      const t = this.entries[j - 1]!.term
      if (t === term) return j
      if (t < term) return 0 // terms only decrease going back
    }
    return 0
  }

  /** Appends at the end (a leader's own entries, or bootstrap). */
  append (e: Entry): void {
    if (e.index !== this.entries.length + 1) throw new LogError(`append of index ${e.index} at lastIndex ${this.entries.length}`)
    if (e.term < this.lastTerm()) throw new LogError(`append of term ${e.term} after term ${this.lastTerm()}`)
    this.push(e)
    this.unstableFrom = Math.min(this.unstableFrom, e.index)
  }

  /**
   * Follower side of an append whose prevIndex already matched: skips entries
   * we have, truncates at the first conflicting one, appends the rest.
   * Returns the index truncated from, if any, so the caller can assert it is
   * above the commit index (a committed entry must never be rolled back).
   */
  merge (entries: readonly Entry[]): number | undefined {
    let truncatedAt: number | undefined
    for (const e of entries) {
      const have = this.term(e.index)
      if (have === e.term) continue
      if (have !== undefined) {
        this.truncateFrom(e.index)
        truncatedAt = e.index
      }
      this.append(e)
    }
    return truncatedAt
  }

  private truncateFrom (i: number): void {
    this.entries.length = i - 1
    while (this.configIndexes.length > 0 && this.configIndexes[this.configIndexes.length - 1]! >= i) this.configIndexes.pop()
    if (i <= this.persistedLast) {
      this.pendingTruncate = Math.min(this.pendingTruncate ?? i, i)
      this.persistedLast = i - 1
    }
    this.unstableFrom = Math.min(this.unstableFrom, i)
  }

  private push (e: Entry): void {
    this.entries.push(e)
    if (e.kind === 'config') this.configIndexes.push(e.index)
  }

  /** The latest config entry (index and voters), or null on an empty log. */
  config (): { index: number, voters: string[] } | null {
    return this.configAt(this.configIndexes.length - 1)
  }

  /** The config before the latest one, or null. */
  previousConfig (): { index: number, voters: string[] } | null {
    return this.configAt(this.configIndexes.length - 2)
  }

  private configAt (k: number): { index: number, voters: string[] } | null {
    const index = this.configIndexes[k]
    if (index === undefined) return null
    const e = this.entries[index - 1]!
    return { index, voters: (e.data as ConfigData).voters }
  }

  hasUnstable (): boolean {
    return this.pendingTruncate !== undefined || this.unstableFrom <= this.entries.length
  }

  /** What the shell must persist; it is then taken as durable. */
  drainUnstable (): { truncateFrom?: number, append: Entry[] } {
    const append = this.slice(this.unstableFrom, this.entries.length)
    const out: { truncateFrom?: number, append: Entry[] } = { append }
    if (this.pendingTruncate !== undefined) out.truncateFrom = this.pendingTruncate
    this.pendingTruncate = undefined
    this.persistedLast = this.entries.length
    this.unstableFrom = this.entries.length + 1
    return out
  }
}
