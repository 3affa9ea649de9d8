/**
 * The one launch-with-fallbacks loop, for the burst service and the leader's
 * property simulator alike (test/leader/sim.ts drives this very code against
 * fake providers):
 *
 *   for the action's offering, then each fallback (none dearer than what the
 *   budget reserved): create; resolved → record the launch (and the offerings
 *   that refused first); InsufficientCapacity → try the next; any other error
 *   → record the failure (unless the provider could not be reached: nothing is
 *   known, the leader re-issues the launch); none had capacity → record the
 *   failure with the offerings that refused, so placement skips them a while.
 *
 * No provider call is made once `leading()` says this node no longer acts as
 * the leader: the new leader re-issues what is unconfirmed (keys make creates
 * idempotent). Outcomes go to `record`; the caller commits them.
 */
import { isInsufficientCapacityError, type Offering, type Provider } from '../../providers/types.ts'
import { createdOutcomes, errorCode, launchFailedOutcome, launchRequest, type LaunchAction, type LedgerEntry, type Policy } from './index.ts'

export interface LauncherLog {
  info: (o: object, msg: string) => void
  warn: (o: object, msg: string) => void
}

/** Counts provider create calls (meshd_burst_launches_total, meshd_burst_launch_failures_total). */
export interface LaunchCounters {
  launched: (provider: string) => void
  /** `error` is outcomes.ts' errorCode: a fixed set of kinds. */
  failed: (provider: string, error: string) => void
}

export interface Launcher {
  providers: ReadonlyMap<string, Pick<Provider, 'name' | 'create'>>
  policy: Policy
  /** The term the action was decided in (stamped on the outcome entries). */
  term: number
  /** Addresses a launched node dials to join. */
  peers: readonly string[]
  now: () => number
  /** Asked before every provider call: false once this node is no longer the acting leader. */
  leading: () => boolean
  /** Receives the entries that record the outcome (nothing when there is none to record). */
  record: (entries: LedgerEntry[]) => void
  /** A create that takes longer is abandoned (recorded as a failure of that offering); none when absent. */
  timeoutMs?: number
  log?: LauncherLog
  counters?: LaunchCounters
}

/** Runs one launch action to its outcome. Never throws: every failure is an outcome (or nothing to record). */
export async function launch (a: LaunchAction, l: Launcher): Promise<void> {
  const provider = l.providers.get(a.offering.provider)
  if (provider === undefined) return
  const refused: Offering[] = []
  let last: unknown = null
  for (const offering of [a.offering, ...a.fallbacks]) {
    if (!l.leading()) return
    try {
      const req = launchRequest(a, offering, l.policy, l.peers)
      const created = provider.create(req)
      const inst = await (l.timeoutMs === undefined ? created : withTimeout(created, l.timeoutMs, `create ${a.key}`))
      l.counters?.launched(provider.name)
      l.log?.info({ key: a.key, provider: provider.name, id: inst.id, reason: a.reason }, `launched ${a.key} on ${provider.name}`)
      l.record(createdOutcomes(a.key, inst, offering, refused, l.term, l.now()))
      return
    } catch (err) {
      last = err
      l.counters?.failed(provider.name, errorCode(err))
      if (!isInsufficientCapacityError(err)) break
      refused.push(offering)
    }
  }
  l.log?.warn({ key: a.key, err: last instanceof Error ? last.message : String(last), refused: refused.length }, 'launch failed')
  const failed = launchFailedOutcome(a.key, last, refused, l.term, l.now())
  if (failed !== null) l.record([failed])
}

export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => { reject(new Error(`${what} took longer than ${ms} ms`)) }, ms)
    p.then((v) => { clearTimeout(t); resolve(v) }, (e: unknown) => { clearTimeout(t); reject(e as Error) })
  })
}
