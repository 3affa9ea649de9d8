/**
 * The ledger as every voter holds it: the committed log's ledger entries
 * applied in order. A new leader therefore starts with the complete ledger.
 * A command that does not parse stops the applying (skipping it would make
 * this node's ledger differ from its peers'); the node then reports it and
 * the operator looks (it means two meshd versions disagree).
 */
import { applyChecked, emptyLedger, parseEntry, type LedgerEntry, type LedgerState } from './index.ts'

export const LEDGER_COMMAND_VERSION = 1

/** The Raft command that carries ledger entries: one decision's entries commit together. */
export interface LedgerCommand { v: typeof LEDGER_COMMAND_VERSION, kind: 'ledger', entries: LedgerEntry[] }

export function ledgerCommand (entries: LedgerEntry[]): LedgerCommand {
  return { v: LEDGER_COMMAND_VERSION, kind: 'ledger', entries }
}

export class LedgerReplica {
  state: LedgerState = emptyLedger()
  /** Index of the last Raft entry applied. */
  index = 0
  broken: string | null = null
  private readonly log: { warn: (o: object, msg: string) => void, error: (o: object, msg: string) => void }
  private readonly listeners = new Set<() => void>()

  constructor (log: LedgerReplica['log']) {
    this.log = log
  }

  onChange (fn: () => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  apply (data: unknown, index: number): void {
    if (this.broken !== null) return
    const cmd = data as Partial<LedgerCommand> | null
    if (cmd === null || typeof cmd !== 'object' || cmd.kind !== 'ledger') return
    if (cmd.v !== LEDGER_COMMAND_VERSION || !Array.isArray(cmd.entries)) {
      this.broken = `entry ${index}: ledger command version ${String(cmd.v)} not understood`
      this.log.error({ index }, this.broken)
      return
    }
    for (const raw of cmd.entries) {
      const p = parseEntry(raw)
      if (!p.ok) {
        this.broken = `entry ${index}: ${p.error}`
        this.log.error({ index, error: p.error }, 'a committed ledger entry does not parse: applying stopped')
        return
      }
      const r = applyChecked(this.state, p.entry)
      this.state = r.state
      if (!r.ok) this.log.warn({ index, why: r.why }, 'ledger entry refused (as on every node)')
    }
    this.index = index
    for (const fn of this.listeners) fn()
  }

  reset (): void {
    this.state = emptyLedger()
    this.index = 0
    this.broken = null
    for (const fn of this.listeners) fn()
  }
}
