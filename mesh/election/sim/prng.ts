/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32) so that a
 * simulation run is a pure function of its seed. Math.random is never used
 * in the simulation: a failing seed must replay exactly.
 */

function splitmix32 (state: number): () => number {
  let s = state >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor (seed: number) {
    const sm = splitmix32(seed)
    this.a = sm(); this.b = sm(); this.c = sm(); this.d = sm()
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1 // the all-zero state is a fixed point
  }

  /** A 32-bit unsigned integer. */
  u32 (): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0
    const t = (this.b << 9) >>> 0
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return result
  }

  /** Uniform in [0, 1). */
  next (): number { return this.u32() / 4294967296 }

  /** Uniform in [lo, hi). */
  range (lo: number, hi: number): number { return lo + this.next() * (hi - lo) }

  /** An integer in [lo, hi). */
  int (lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo)) }

  chance (p: number): boolean { return this.next() < p }

  pick<T> (items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list')
    return items[this.int(0, items.length)]!
  }

  /** Exponentially distributed with the given mean. */
  exp (mean: number): number { return -mean * Math.log(1 - this.next()) }

  /** An independent stream, so adding a consumer does not shift others' draws. */
  fork (): Rng { return new Rng(this.u32() ^ 0x5bd1e995) }

  /** A () => number for code that takes an injected random source. */
  fn (): () => number { return () => this.next() }
}

function rotl (x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}
