/** Small statistics helpers shared by the benchmarks. */

export function median (xs: number[]): number {
  return quantile(xs, 0.5)
}

/** Linear-interpolated quantile (q in [0, 1]) of a sample. */
export function quantile (xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo)
}

export function fmtMs (ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`
}

export function pct (x: number): string {
  return `${x.toFixed(1)}%`
}
