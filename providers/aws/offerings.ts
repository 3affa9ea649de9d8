/**
 * The provider's offerings as a pure function of what it knows: the zones of
 * each region, the spot prices read last, the on-demand table and overrides,
 * and the refusals in force. One offering per (instance type, zone, market):
 * spot ones when the provider launches on spot, on-demand always (the leader
 * uses them for the on-demand base and as dynamic fallback). A type with no
 * price in a market is not offered in it; a type with no price at all in a
 * region is named in `notes` (the provider logs them).
 */
import type { Offering } from '../types.ts'
import { onDemandPrice } from './on-demand-prices.ts'
import type { UnavailableEntry, UnavailableKey } from './unavailable.ts'

/** What is known of one region now. */
export interface RegionFacts {
  region: string
  /** null: the zones could not be read (the region is left out). */
  zones: string[] | null
  /** Latest spot $/h by `${zone}/${type}`; null when never read. */
  spot: ReadonlyMap<string, number> | null
  /** Why a part is missing or stale, for the notes. */
  problems: string[]
}

export interface OfferingsInput {
  provider: string
  instanceTypes: readonly string[]
  spot: boolean
  onDemandOverrides: Readonly<Record<string, number>>
  regions: readonly RegionFacts[]
  unavailable: (k: UnavailableKey) => UnavailableEntry | null
}

export interface OfferingsResult {
  offerings: Offering[]
  notes: string[]
}

export function spotKey (zone: string, type: string): string {
  return `${zone}/${type}`
}

export function buildOfferings (i: OfferingsInput): OfferingsResult {
  const offerings: Offering[] = []
  const notes: string[] = []
  for (const r of i.regions) {
    for (const p of r.problems) notes.push(`${r.region}: ${p}`)
    if (r.zones === null) continue
    for (const type of i.instanceTypes) {
      const od = onDemandPrice(r.region, type, i.onDemandOverrides)
      let priced = od !== null
      for (const zone of r.zones) {
        const sp = i.spot ? r.spot?.get(spotKey(zone, type)) : undefined
        if (sp !== undefined) {
          priced = true
          offerings.push(offering(i, r.region, zone, type, true, sp))
        }
        if (od !== null) offerings.push(offering(i, r.region, zone, type, false, od))
      }
      if (!priced) notes.push(`${r.region}: ${type} left out: no on-demand price (add it to on_demand_prices)${i.spot ? ' and no spot price read' : ''}`)
      else if (od === null) notes.push(`${r.region}: ${type} offered on spot only: no on-demand price (add it to on_demand_prices)`)
    }
  }
  return { offerings, notes }
}

function offering (i: OfferingsInput, region: string, zone: string, instanceType: string, spot: boolean, pricePerHour: number): Offering {
  return {
    provider: i.provider,
    kind: 'aws',
    region,
    zone,
    instanceType,
    spot,
    pricePerHour,
    available: i.unavailable({ region, zone, instanceType, spot }) === null
  }
}
