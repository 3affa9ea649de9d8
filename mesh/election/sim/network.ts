/**
 * The virtual network: per-message delay (so messages reorder), loss,
 * duplication, occasional slow spikes, and directed link cuts (a partition is
 * a set of cuts; a one-way cut models an asymmetric failure). It decides a
 * message's fate at send time; the cluster re-checks the link on delivery,
 * so a partition also eats messages already in flight.
 */
import type { Rng } from './prng.ts'

export interface NetConfig {
  minDelayMs: number
  maxDelayMs: number
  /** Probability that a message is lost. */
  loss: number
  /** Probability that a message is delivered twice (independently delayed). */
  duplicate: number
  /** Probability that a message is delayed by up to spikeMaxMs extra. */
  spike: number
  spikeMaxMs: number
}

export const CALM_NET: NetConfig = { minDelayMs: 1, maxDelayMs: 20, loss: 0, duplicate: 0, spike: 0, spikeMaxMs: 0 }

export class Network {
  config: NetConfig
  private readonly cuts = new Set<string>()

  constructor (config: NetConfig) {
    this.config = { ...config }
  }

  isUp (from: string, to: string): boolean {
    return !this.cuts.has(`${from}>${to}`)
  }

  cut (from: string, to: string): void { this.cuts.add(`${from}>${to}`) }

  cutBoth (a: string, b: string): void { this.cut(a, b); this.cut(b, a) }

  /** Cuts every link between different groups (nodes in no group are untouched). */
  partition (groups: readonly (readonly string[])[]): void {
    for (const [i, g] of groups.entries()) {
      for (const [j, h] of groups.entries()) {
        if (i === j) continue
        for (const a of g) for (const b of h) this.cut(a, b)
      }
    }
  }

  /** Cuts node `id` off from everyone in `others`, both ways. */
  isolate (id: string, others: readonly string[]): void {
    for (const o of others) if (o !== id) this.cutBoth(id, o)
  }

  heal (): void { this.cuts.clear() }

  healLink (a: string, b: string): void { this.cuts.delete(`${a}>${b}`); this.cuts.delete(`${b}>${a}`) }

  get cutCount (): number { return this.cuts.size }

  /** The delivery delays of one send: [] if lost, two if duplicated. */
  fate (rng: Rng, from: string, to: string): number[] {
    if (!this.isUp(from, to)) return []
    const c = this.config
    if (c.loss > 0 && rng.chance(c.loss)) return []
    const delay = (): number => rng.range(c.minDelayMs, c.maxDelayMs) + (c.spike > 0 && rng.chance(c.spike) ? rng.range(0, c.spikeMaxMs) : 0)
    const out = [delay()]
    if (c.duplicate > 0 && rng.chance(c.duplicate)) out.push(delay())
    return out
  }
}
