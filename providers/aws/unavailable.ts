/**
 * Offerings EC2 recently refused for capacity (Karpenter's unavailable
 * offerings cache), pure apart from the clock it is given: an entry per
 * (region, zone, instance type, market) that expires `ttlMs` after the last
 * refusal. offerings() reports them `available: false`, and create() refuses
 * them at once without asking EC2 again (a refusal costs one call, not one
 * per fallback that names the same zone).
 */
export interface UnavailableKey {
  region: string
  zone: string
  instanceType: string
  spot: boolean
}

export interface UnavailableEntry extends UnavailableKey {
  /** EC2's code: InsufficientInstanceCapacity, SpotMaxPriceTooLow ... */
  code: string
  until: number
}

export function unavailableId (k: UnavailableKey): string {
  return `${k.region}/${k.zone}/${k.instanceType}/${k.spot ? 'spot' : 'on-demand'}`
}

export class UnavailableOfferings {
  private readonly ttlMs: number
  private readonly now: () => number
  private readonly entries = new Map<string, UnavailableEntry>()

  constructor (ttlMs: number, now: () => number) {
    this.ttlMs = ttlMs
    this.now = now
  }

  /** Marks `k` unavailable for ttl from now (a later refusal extends it). */
  mark (k: UnavailableKey, code: string): UnavailableEntry {
    const e: UnavailableEntry = { region: k.region, zone: k.zone, instanceType: k.instanceType, spot: k.spot, code, until: this.now() + this.ttlMs }
    this.entries.set(unavailableId(k), e)
    return e
  }

  /** The refusal in force for `k`, or null (expired entries are dropped here). */
  get (k: UnavailableKey): UnavailableEntry | null {
    const id = unavailableId(k)
    const e = this.entries.get(id)
    if (e === undefined) return null
    if (e.until <= this.now()) {
      this.entries.delete(id)
      return null
    }
    return e
  }

  /** Every refusal still in force. */
  list (): UnavailableEntry[] {
    const now = this.now()
    const out: UnavailableEntry[] = []
    for (const [id, e] of this.entries) {
      if (e.until <= now) this.entries.delete(id)
      else out.push(e)
    }
    return out
  }
}
