/**
 * On-demand list prices the budget charges for an on-demand EC2 instance
 * (spot prices are read live from DescribeSpotPriceHistory instead).
 *
 * What these are: AWS's public **list prices of Linux on-demand instances,
 * shared tenancy, in US dollars per hour** (https://aws.amazon.com/ec2/pricing/on-demand/),
 * with no Savings Plan, Reserved Instance or negotiated discount, no EBS and
 * no data transfer. Written down by hand (meshd never calls the Pricing API;
 * the machine this was written on could not reach it), with g5.xlarge and
 * m7g.large checked against a copy of the price list dated PRICES_TAKEN_AT.
 * They cover the instance kinds a meshd burst tier typically runs (NVIDIA GPU
 * g4dn / g5 / g6; general-purpose, compute- and memory-optimised 4xlarge for
 * CPU inference; t3 for trials) in the three US regions where these list
 * prices are the same (us-east-1, us-east-2, us-west-2).
 *
 * Prices change and differ in other regions: a type or region missing here,
 * or a price you pay differently, goes in the provider's `on_demand_prices`
 * (`{ g5.xlarge: 1.006 }`), which wins over this table for every region. A
 * type with no on-demand price anywhere is offered on spot only (and with no
 * spot price either, left out with a log line).
 */
export const PRICES_TAKEN_AT = '2026-06-17'
export const PRICES_SOURCE = 'https://aws.amazon.com/ec2/pricing/on-demand/ (Linux, shared tenancy, USD/h)'

/** $/h per instance type, the same in each region of US_REGIONS. */
const US_LIST: Readonly<Record<string, number>> = {
  // NVIDIA T4
  'g4dn.xlarge': 0.526,
  'g4dn.2xlarge': 0.752,
  'g4dn.4xlarge': 1.204,
  'g4dn.12xlarge': 3.912,
  // NVIDIA A10G
  'g5.xlarge': 1.006,
  'g5.2xlarge': 1.212,
  'g5.4xlarge': 1.624,
  'g5.8xlarge': 2.448,
  'g5.12xlarge': 5.672,
  'g5.48xlarge': 16.288,
  // NVIDIA L4
  'g6.xlarge': 0.8048,
  'g6.2xlarge': 0.9776,
  'g6.12xlarge': 4.6016,
  // CPU inference
  'c6i.4xlarge': 0.68,
  'm6i.4xlarge': 0.768,
  'r6i.4xlarge': 1.008,
  'c7i.4xlarge': 0.714,
  'm7i.4xlarge': 0.8064,
  'r7i.4xlarge': 1.0584,
  'c7a.4xlarge': 0.82112,
  'm7a.4xlarge': 0.92736,
  'r7a.4xlarge': 1.21728,
  'm7g.large': 0.0816,
  'm7g.4xlarge': 0.6528,
  // Trials
  't3.micro': 0.0104,
  't3.small': 0.0208,
  't3.medium': 0.0416,
  't3.large': 0.0832
}

const US_REGIONS = ['us-east-1', 'us-east-2', 'us-west-2'] as const

/** region → instance type → $/h. */
export const ON_DEMAND_PRICES: Readonly<Record<string, Readonly<Record<string, number>>>> = Object.fromEntries(US_REGIONS.map((r) => [r, US_LIST]))

/**
 * The on-demand $/h of `type` in `region`: the config's override first (any
 * region), then the table; null when neither knows it.
 */
export function onDemandPrice (region: string, type: string, overrides: Readonly<Record<string, number>>): number | null {
  const o = overrides[type]
  if (o !== undefined) return o
  return ON_DEMAND_PRICES[region]?.[type] ?? null
}
