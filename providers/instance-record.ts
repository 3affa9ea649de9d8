/**
 * The Instance a provider reports for one of its launch records (the local
 * provider's manifest, the ssh provider's key file on a host): the fields
 * every record keeps, the state observed now, and the price. Shared so the
 * providers agree on what a launching or terminated record looks like to
 * the leader.
 */
import { z } from 'zod'
import type { Instance, InstanceState } from './types.ts'

/**
 * The fields of a launch record that every provider keeps (spread into each
 * provider's own versioned schema beside what only it records).
 */
export const launchRecordShape = {
  key: z.string(),
  id: z.string(),
  cluster: z.string(),
  /** The provider's config name when it was launched. */
  provider: z.string(),
  region: z.string(),
  node_name: z.string(),
  /** Epoch ms (the provider's clock): billing starts here. */
  launched_at: z.number(),
  price_per_hour: z.number().nonnegative(),
  /** After SIGTERM, how long the node may take to drain and exit before it is SIGKILLed. */
  stop_grace_ms: z.number().nonnegative(),
  /** Set by the first delete(): SIGTERM was sent (exactly once: a second SIGTERM makes meshd exit without draining). */
  stop_requested_at: z.number().nullable(),
  /** Last SIGKILL sent after the grace ran out. */
  killed_at: z.number().nullable(),
  /** Set once the process is known gone; the record stays (the key is remembered). */
  terminated_at: z.number().nullable(),
  /** Its mesh address (multiaddr with /p2p/), once it runs. */
  address: z.string().nullable(),
  /** Why it never ran or how it ended, for people reading the file. */
  note: z.string().nullable()
}

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
