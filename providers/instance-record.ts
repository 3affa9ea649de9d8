/**
 * The Instance a provider reports for one of its launch records (the local
 * provider's manifest, the ssh provider's key file on a host): the fields
 * every record keeps, the state observed now, and the price. Shared so the
 * providers agree on what a launching or terminated record looks like to
 * the leader.
 */
import type { Instance, InstanceState } from './types.ts'

/** What every provider's launch record keeps (snake_case: it is stored as JSON). */
export interface LaunchRecord {
  id: string
  key: string
  region: string
  launched_at: number
  price_per_hour: number
  address: string | null
}

export function instanceOf (provider: string, rec: LaunchRecord, state: InstanceState | 'launching', costPerHour: number): Instance {
  const out: Instance = {
    id: rec.id,
    key: rec.key,
    provider,
    region: rec.region,
    spot: false,
    // A launch under way is pending to the leader: it may still fail, and it is already billed.
    state: state === 'launching' ? 'pending' : state,
    launchedAt: rec.launched_at,
    // What the host costs now (the config's cost_per_hour): the leader re-prices from list(); an
    // ended instance keeps the price it ran at.
    pricePerHour: state === 'terminated' ? rec.price_per_hour : costPerHour
  }
  if (rec.address !== null) out.address = rec.address
  return out
}
