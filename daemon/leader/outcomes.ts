/**
 * The ledger entries the launcher records when a provider call comes back,
 * pure constructors so the shell never hand-builds an entry. What each
 * outcome means for the ledger:
 *
 * - create resolved → `instance.launched` (key → id; the offering actually
 *   used when a fallback was taken; the offerings that refused first);
 * - create rejected on every offering tried → `instance.state failed`, with
 *   the offerings that answered InsufficientCapacity (placement skips them
 *   for capacityErrorTtlMs);
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
} from '../../providers/types.ts'
import { LEDGER_VERSION, type LaunchedEntry, type StateEntry } from './entries.ts'

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

/** A short code for the ledger: what kind of failure it was. */
export function errorCode (e: unknown): string {
  if (isInsufficientCapacityError(e)) return 'insufficient_capacity'
  if (isQuotaError(e)) return 'quota'
  if (isProviderUnavailableError(e)) return 'provider_unavailable'
  if (isNotFoundError(e)) return 'not_found'
  return 'error'
}

export function launchFailedOutcome (key: string, error: unknown, refused: readonly Offering[], term: number, at: number): StateEntry {
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
