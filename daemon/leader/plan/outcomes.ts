/**
 * The ledger entries the launcher records when a provider call comes back,
 * pure constructors so the shell never hand-builds an entry. What each
 * outcome means for the ledger:
 *
 * - create resolved → `instance.launched` (key → id; the offering actually
 *   used when a fallback was taken; the offerings that refused first);
 * - create rejected on every offering tried → `instance.state failed`, with
 *   the offerings that answered InsufficientCapacity (placement skips them
 *   for capacityErrorTtlMs); a provider that could not be reached records
 *   nothing (the launch is issued again);
 * - create resolved to an instance already terminated → launched, then
 *   vanished;
 * - delete rejected with NotFoundError → `instance.state terminated` (the
 *   goal is reached);
 * - delete resolved → nothing: the instance may bill while it stops; the next
 *   list() that no longer shows it confirms it (reconcile.ts);
 * - any other rejection → nothing: the leader issues the call again after
 *   actionRetryMs.
 */
import {
  isInsufficientCapacityError,
  isNotFoundError,
  isProviderUnavailableError,
  isQuotaError,
  offeringId,
  type Instance,
  type Offering
} from '../../../providers/types.ts'
import { LEDGER_VERSION, type LaunchedEntry, type LedgerEntry, type StateEntry } from '../ledger/entries.ts'

export function launchedOutcome (key: string, instance: Instance, used: Offering, refused: readonly Offering[], term: number, at: number): LaunchedEntry {
  const e: LaunchedEntry = {
    v: LEDGER_VERSION,
    type: 'instance.launched',
    term,
    at,
    key,
    id: instance.id,
    launchedAt: instance.launchedAt,
    pricePerHour: instance.pricePerHour,
    offering: used,
    reason: refused.length === 0 ? `created ${instance.id}` : `created ${instance.id} after ${refused.length} offering(s) refused for capacity`
  }
  if (refused.length > 0) e.refused = refused.map(offeringId)
  if (instance.address !== undefined) e.address = instance.address
  return e
}

/**
 * The entries for a create that resolved: the launch, and its end at once
 * when the provider handed back an instance already terminated (a re-issued
 * launch whose instance died before anyone recorded it).
 */
export function createdOutcomes (key: string, instance: Instance, used: Offering, refused: readonly Offering[], term: number, at: number): LedgerEntry[] {
  const launched = launchedOutcome(key, instance, used, refused, term, at)
  if (instance.state !== 'terminated') return [launched]
  return [launched, { v: LEDGER_VERSION, type: 'instance.vanished', term, at, key, reason: `${instance.id} was already terminated when its launch was confirmed` }]
}

/** Every code errorCode returns. */
export const ERROR_CODES = ['insufficient_capacity', 'quota', 'provider_unavailable', 'not_found', 'error'] as const

/** A short code for the ledger: what kind of failure it was. */
export function errorCode (e: unknown): typeof ERROR_CODES[number] {
  if (isInsufficientCapacityError(e)) return 'insufficient_capacity'
  if (isQuotaError(e)) return 'quota'
  if (isProviderUnavailableError(e)) return 'provider_unavailable'
  if (isNotFoundError(e)) return 'not_found'
  return 'error'
}

/**
 * The entry for a create that failed on every offering tried, or null when
 * the provider could not be reached (nothing is known: the leader issues the
 * launch again after actionRetryMs, and the launch timeout bounds it).
 */
export function launchFailedOutcome (key: string, error: unknown, refused: readonly Offering[], term: number, at: number): StateEntry | null {
  if (isProviderUnavailableError(error) && refused.length === 0) return null
  const message = error instanceof Error ? error.message : String(error)
  return {
    v: LEDGER_VERSION,
    type: 'instance.state',
    term,
    at,
    key,
    state: 'failed',
    reason: `launch failed: ${message}`.slice(0, 2000),
    error: { code: errorCode(error), refused: refused.map(offeringId) }
  }
}

/** The entry for a delete that came back, or null when there is nothing to record yet. */
export function terminateOutcome (key: string, error: unknown | null, term: number, at: number): StateEntry | null {
  if (error === null || !isNotFoundError(error)) return null
  return { v: LEDGER_VERSION, type: 'instance.state', term, at, key, state: 'terminated', reason: 'terminate confirmed: the provider no longer knows it' }
}
