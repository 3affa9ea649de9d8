/**
 * The election's and the budget's Prometheus metrics, on the daemon's
 * registry (daemon/metrics.ts). Gauges are read at scrape time from what
 * `status --json` shows (no second bookkeeping to drift from it); counters
 * are bumped by the burst service: decisions once committed, provider create
 * calls as they return.
 *
 * The budget's gauges exist on voters only (they hold the replicated ledger)
 * and read the same on every voter: aggregate them with max(), not sum().
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Member } from '../../mesh/membership/table.ts'
import { ERROR_CODES, isFinished, records, type LedgerState, type RecordState } from './index.ts'
import type { BurstMetrics } from './service.ts'

/** What the gauges read, at scrape time. */
export interface LeaderMetricsView {
  selfId: string
  /** Coordination.status(): the leader this node reports, its term, and (on a voter) the voter set. */
  election: () => { leader: string | null, term: number, voters?: string[] }
  members: () => readonly Member[]
  /** On a voter: the budget figures `status` shows, the ledger, the configured providers' names. */
  burst: null | {
    budget: () => { cost_budget: number, spend_per_hour: number, spend_today: number, spend_month: number }
    ledger: () => LedgerState
    providers: readonly string[]
  }
}

/** Instance states a burst instance is in while it may bill (terminated ones and confirmed failures are history). */
export const BILLING_STATES: readonly RecordState[] = ['provisioning', 'starting', 'ready', 'draining', 'terminating', 'failed']

/**
 * Registers the gauges and returns the counters the burst service bumps.
 * `view` is asked at every scrape; undefined before the daemon has started
 * (nothing is reported then). On a voter (`providers` set: the configured
 * providers' names) the budget's series exist, the launch counters start at
 * 0 for every provider and error kind (a rate over a series that does not
 * exist yet is empty, not 0); on a non-voter none of them do.
 */
export function createLeaderMetrics (registry: Registry, providers: readonly string[] | null, view: () => LeaderMetricsView | undefined): BurstMetrics {
  const voter = providers !== null
  const r = [registry]
  const gauge = (name: string, help: string, read: (v: LeaderMetricsView) => number): void => {
    new Gauge({ name, help, registers: r, collect () { const v = view(); if (v !== undefined) this.set(read(v)) } })
  }
  gauge('meshd_leader', '1 while this node is the acting leader, else 0', (v) => v.election().leader === v.selfId ? 1 : 0)
  gauge('meshd_term', 'The election term as this node knows it (a non-voter: the highest a voter announces)', (v) => v.election().term)
  gauge('meshd_voters', 'Voters in the group as this node knows it (a non-voter: members that say they vote)', (v) => voterIds(v).length)
  gauge('meshd_voters_reachable', 'Of those voters, how many this node counts alive (itself included): fewer than a majority means no leader', (v) => votersReachable(voterIds(v), v.members(), v.selfId))
  if (voter) {
    const burst = (read: (b: NonNullable<LeaderMetricsView['burst']>) => number) => (v: LeaderMetricsView): number => v.burst === null ? 0 : read(v.burst)
    gauge('meshd_burst_budget_per_hour', 'burst.cost_budget: dollars per hour all burst capacity may cost together', burst((b) => b.budget().cost_budget))
    gauge('meshd_burst_spend_per_hour', 'Dollars per hour the burst capacity held now costs (pending launches included): never above the budget', burst((b) => b.budget().spend_per_hour))
    gauge('meshd_burst_spend_today', 'Dollars spent on burst capacity since midnight UTC', burst((b) => b.budget().spend_today))
    gauge('meshd_burst_spend_month', 'Dollars spent on burst capacity since the first of the month, UTC', burst((b) => b.budget().spend_month))
    new Gauge({
      name: 'meshd_burst_instances',
      help: 'Burst instances that may still bill, by provider and state (every configured provider and state reported, 0 included)',
      labelNames: ['provider', 'state'] as const,
      registers: r,
      collect () {
        this.reset()
        const b = view()?.burst
        if (b == null) return
        for (const [provider, byState] of instanceCounts(b.ledger(), b.providers)) {
          for (const [state, n] of byState) this.set({ provider, state }, n)
        }
      }
    })
  }
  const decisions = new Counter({ name: 'meshd_burst_decisions_total', help: 'Leader decisions committed to the ledger, by kind (burst, terminate, tick), outcome (granted, cut, refused; acted for a tick) and reason kind', labelNames: ['kind', 'outcome', 'reason'] as const, registers: r })
  const launches = new Counter({ name: 'meshd_burst_launches_total', help: 'Burst instances a provider created, by provider', labelNames: ['provider'] as const, registers: r })
  const failures = new Counter({ name: 'meshd_burst_launch_failures_total', help: `Provider create calls that failed, by provider and error kind (${ERROR_CODES.join(', ')})`, labelNames: ['provider', 'error'] as const, registers: r })
  for (const provider of providers ?? []) {
    launches.inc({ provider }, 0)
    for (const error of ERROR_CODES) failures.inc({ provider, error }, 0)
  }
  return {
    decided: (d) => { decisions.inc({ kind: d.kind, outcome: d.outcome, reason: d.reason }) },
    launched: (provider) => { launches.inc({ provider }) },
    failed: (provider, error) => { failures.inc({ provider, error }) }
  }
}

/** The voter set: a voter's own (latest config); a non-voter's, the members that say they vote and have not left. */
function voterIds (v: LeaderMetricsView): readonly string[] {
  const own = v.election().voters
  if (own !== undefined) return own
  return v.members().filter((m) => m.heartbeat.voter && m.state !== 'left').map((m) => m.id)
}

/** Voters this node counts alive: itself, and those its member table lists alive. */
export function votersReachable (voters: readonly string[], members: readonly Member[], selfId: string): number {
  const alive = new Set(members.filter((m) => m.state === 'alive').map((m) => m.id))
  return voters.filter((id) => id === selfId || alive.has(id)).length
}

/** provider → state → count of instances that may bill; every configured provider and billing state present. */
export function instanceCounts (ledger: LedgerState, providers: readonly string[]): Map<string, Map<RecordState, number>> {
  const out = new Map<string, Map<RecordState, number>>()
  const row = (p: string): Map<RecordState, number> => {
    let m = out.get(p)
    if (m === undefined) {
      m = new Map(BILLING_STATES.map((s) => [s, 0]))
      out.set(p, m)
    }
    return m
  }
  for (const p of providers) row(p)
  for (const rec of records(ledger)) {
    if (isFinished(rec)) continue
    const m = row(rec.provider)
    m.set(rec.state, (m.get(rec.state) ?? 0) + 1)
  }
  return out
}
