/**
 * Money. Prices are dollars per hour as floats in the data (that is what
 * providers quote), but every comparison against the budget is made in whole
 * micro-dollars: 0.1 + 0.2 must fit a budget of 0.30.
 */

/** Dollars (per hour) → whole micro-dollars. */
export function micros (dollars: number): number {
  return Math.round(dollars * 1_000_000)
}

/**
 * For people: two decimals, more only when the price needs them (spot t3.micro
 * at 0.0031/h must not read 0.00/h).
 */
export function fmtMoney (dollars: number): string {
  const two = dollars.toFixed(2)
  if (Math.abs(Number(two) - dollars) < 1e-9) return two
  return String(Number(dollars.toFixed(6)))
}

/** "0.30/h" */
export function perHour (dollars: number): string {
  return `${fmtMoney(dollars)}/h`
}

/** "0.30/h" or "0.20–0.45/h" for a range. */
export function priceRange (prices: readonly number[]): string {
  if (prices.length === 0) return perHour(0)
  const lo = Math.min(...prices)
  const hi = Math.max(...prices)
  return micros(lo) === micros(hi) ? perHour(lo) : `${fmtMoney(lo)}–${fmtMoney(hi)}/h`
}
