import t from 'tap'
import fc from 'fast-check'
import { fit, refusal, shed, usageOf, type Held, type Kept, type Limits } from '../../daemon/leader/plan/budget.ts'
import { fmtMoney, micros, priceRange } from '../../daemon/leader/plan/money.ts'

const limits = (costBudget: number, maxCloudInstances = 20, providerMax: Record<string, number> = { ws: 4, aws: 20, pool: 2 }): Limits => ({ costBudget, maxCloudInstances, providerMax })
const held = (...xs: Array<[string, number]>): Held[] => xs.map(([provider, pricePerHour], i) => ({ key: `h${i}`, provider, pricePerHour }))
const wish = (provider: string, price: number, n: number): Array<{ provider: string, pricePerHour: number }> => Array.from({ length: n }, () => ({ provider, pricePerHour: price }))

t.test('fit: how many fit and which limit binds, with the reason the answer shows', async (t) => {
  const rows: Array<{ name: string, held: Held[], wishes: ReturnType<typeof wish>, limits: Limits, count: number, binding: string | null, reason: string }> = [
    { name: "INTERFACE.md's example", held: [], wishes: wish('ws', 0.3, 5), limits: limits(1), count: 3, binding: 'cost_budget', reason: 'cost_budget 1.00/h allows 3 at 0.30/h' },
    { name: 'exact fit in micro-dollars (0.1 + 0.2 = 0.30)', held: held(['aws', 0.1]), wishes: wish('aws', 0.2, 1), limits: limits(0.3), count: 1, binding: null, reason: 'within cost_budget 0.30/h: 0.10/h → 0.30/h' },
    { name: 'what is in use is said', held: held(['aws', 0.4]), wishes: wish('ws', 0.3, 5), limits: limits(1), count: 2, binding: 'cost_budget', reason: 'cost_budget 1.00/h allows 2 more at 0.30/h (0.40/h in use)' },
    { name: 'refused by the budget', held: held(['aws', 0.9]), wishes: wish('ws', 0.3, 1), limits: limits(1), count: 0, binding: 'cost_budget', reason: 'cost_budget 1.00/h allows 0 more at 0.30/h (0.90/h in use)' },
    { name: 'max_cloud_instances binds first', held: held(['aws', 0], ['aws', 0]), wishes: wish('aws', 0, 5), limits: limits(10, 3), count: 1, binding: 'max_cloud_instances', reason: 'max_cloud_instances 3 allows 1 more (2 in use)' },
    { name: "a provider's max_instances", held: held(['ws', 0.3], ['ws', 0.3], ['ws', 0.3]), wishes: wish('ws', 0.3, 3), limits: limits(10), count: 1, binding: 'max_instances', reason: 'ws max_instances 4 allows 1 more (3 in use)' },
    { name: 'free capacity is bounded by counts only', held: [], wishes: wish('pool', 0, 5), limits: limits(0), count: 2, binding: 'max_instances', reason: 'pool max_instances 2 allows 2' },
    { name: 'a skipped wish does not stop a cheaper later one', held: [], wishes: [...wish('aws', 0.8, 1), ...wish('ws', 0.3, 1)], limits: limits(0.5), count: 1, binding: 'cost_budget', reason: 'cost_budget 0.50/h allows 1 at 0.30/h' },
    { name: 'an unknown provider has no room', held: [], wishes: wish('gcp', 0.1, 1), limits: limits(10), count: 0, binding: 'max_instances', reason: 'gcp max_instances 0 allows 0' },
    { name: 'a zero budget refuses anything that costs', held: [], wishes: wish('aws', 0.0031, 1), limits: limits(0), count: 0, binding: 'cost_budget', reason: 'cost_budget 0.00/h allows 0 at 0.0031/h' }
  ]
  for (const r of rows) {
    const f = fit(r.held, r.wishes, r.limits)
    t.equal(f.count, r.count, `${r.name}: count`)
    t.equal(f.binding?.kind ?? null, r.binding, `${r.name}: binding`)
    t.equal(f.reason, r.reason, `${r.name}: reason`)
  }
})

t.test('fit never exceeds any limit (property)', async (t) => {
  const price = fc.integer({ min: 0, max: 200 }).map((c) => c / 100)
  const prov = fc.constantFrom('ws', 'aws', 'pool')
  fc.assert(fc.property(
    fc.array(fc.tuple(prov, price), { maxLength: 10 }),
    fc.array(fc.record({ provider: prov, pricePerHour: price }), { maxLength: 15 }),
    fc.integer({ min: 0, max: 500 }).map((c) => c / 100),
    fc.integer({ min: 0, max: 12 }),
    (h, wishes, budget, max) => {
      const hs = held(...h)
      const heldBefore = JSON.stringify(hs)
      const l = limits(budget, max)
      const f = fit(hs, wishes, l)
      const after = [...hs, ...f.accepted.map((i, j) => ({ key: `w${j}`, ...wishes[i]! }))]
      const u = usageOf(after)
      // Within the limits, or nothing was added to what was already over.
      if (f.count > 0) {
        if (u.micros > micros(budget)) return false
        if (u.count > max) return false
        for (const i of f.accepted) {
          const p = wishes[i]!.provider
          if ((u.byProvider.get(p) ?? 0) > (l.providerMax[p] ?? 0)) return false
        }
      }
      // Greedy and maximal: every refused wish is refused beside the final usage.
      for (let i = 0; i < wishes.length; i++) {
        if (!f.accepted.includes(i) && refusal(u, wishes[i]!, l) === null) return false
      }
      // A pure decision: what is held is read, never changed.
      return JSON.stringify(hs) === heldBefore
    }
  ))
})

t.test('shed: most expensive first until the kept capacity fits', async (t) => {
  const k = (key: string, pricePerHour: number, ready = true, since = 0): Kept => ({ key, provider: 'aws', pricePerHour, ready, since })
  const rows: Array<{ name: string, kept: Kept[], budget: number, keys: string[] }> = [
    { name: 'within the budget: nothing', kept: [k('a', 0.3), k('b', 0.3)], budget: 1, keys: [] },
    { name: 'exactly at the budget: nothing', kept: [k('a', 0.5), k('b', 0.5)], budget: 1, keys: [] },
    { name: '1.40 over 1.00: the 0.60 goes', kept: [k('a', 0.3), k('b', 0.6), k('c', 0.5)], budget: 1, keys: ['b'] },
    { name: 'several go, dearest first', kept: [k('a', 0.3), k('b', 0.6), k('c', 0.5)], budget: 0.3, keys: ['b', 'c'] },
    { name: 'equal price: a pending one before a serving one', kept: [k('a', 0.5, true), k('b', 0.5, false)], budget: 0.5, keys: ['b'] },
    { name: 'equal price, both serving: the newest', kept: [k('a', 0.5, true, 10), k('b', 0.5, true, 20)], budget: 0.5, keys: ['b'] },
    { name: 'a zero budget keeps only free capacity', kept: [k('a', 0), k('b', 0.01)], budget: 0, keys: ['b'] }
  ]
  for (const r of rows) t.same(shed(r.kept, limits(r.budget)).keys, r.keys, r.name)
  const s = shed([k('a', 0.3), k('b', 0.6), k('c', 0.5)], limits(1))
  t.equal(s.reason, 'cost_budget 1.00/h exceeded by live burst capacity at 1.40/h: shed 1, most expensive first, to 0.80/h')
})

t.test('shed leaves capacity within the budget, and sheds no more than needed (property)', async (t) => {
  fc.assert(fc.property(
    fc.array(fc.record({ price: fc.integer({ min: 0, max: 150 }), ready: fc.boolean(), since: fc.nat(100) }), { maxLength: 12 }),
    fc.integer({ min: 0, max: 600 }),
    (xs, budgetCents) => {
      const kept: Kept[] = xs.map((x, i) => ({ key: `k${i}`, provider: 'aws', pricePerHour: x.price / 100, ready: x.ready, since: x.since }))
      const s = shed(kept, limits(budgetCents / 100))
      const left = kept.filter((k) => !s.keys.includes(k.key))
      const total = left.reduce((a, k) => a + micros(k.pricePerHour), 0)
      if (total > micros(budgetCents / 100)) return false
      if (s.keys.length === 0) return true
      // Minimal along the order: without the last one shed it would still be over.
      const last = kept.find((k) => k.key === s.keys[s.keys.length - 1])!
      return total + micros(last.pricePerHour) > micros(budgetCents / 100)
    }
  ))
})

t.test('money: exact sums and readable prices', async (t) => {
  t.equal(micros(0.1) + micros(0.2), micros(0.3))
  t.equal(fmtMoney(1), '1.00')
  t.equal(fmtMoney(0.3), '0.30')
  t.equal(fmtMoney(0.0031), '0.0031', 'cheap spot prices keep their digits')
  t.equal(priceRange([0.2, 0.45, 0.3]), '0.20–0.45/h')
  t.equal(priceRange([0.3, 0.3]), '0.30/h')
})
