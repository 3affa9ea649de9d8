import t from 'tap'
import { fakeProvider } from '../../providers/fake/index.ts'
import {
  InsufficientCapacityError,
  NotFoundError,
  ProviderUnavailableError,
  QuotaError,
  isInsufficientCapacityError,
  isNotFoundError,
  isProviderError,
  isProviderUnavailableError,
  isQuotaError,
  offeringId,
  type LaunchRequest,
  type Offering
} from '../../providers/types.ts'
import { runProviderCompliance } from './compliance.ts'

const spotA: Offering = { provider: 'fake', kind: 'fake', region: 'r1', zone: 'r1a', instanceType: 'm.large', spot: true, pricePerHour: 0.2, available: true }
const spotB: Offering = { ...spotA, zone: 'r1b', available: false }
const od: Offering = { ...spotA, zone: 'r1a', spot: false, pricePerHour: 0.6 }

function req (key: string, offering: Offering = spotA, cluster = 'test'): LaunchRequest {
  return { key, cluster, offering, replica: { models: ['m'], slots: 1, command: 'sim' }, node: { name: key, config: {} }, bootstrap: { peers: [] } }
}

t.test('compliance: the fake provider', async (t) => {
  await runProviderCompliance(t, () => {
    const p = fakeProvider({ name: 'fake', cluster: 'compliance', offerings: [spotA, spotB, od] })
    return { provider: p, cluster: 'compliance', otherCluster: 'someone-else', unavailableOffering: async () => spotB }
  })
})

t.test('records every call with its outcome', async (t) => {
  const p = fakeProvider({ name: 'fake', offerings: [spotA] })
  const i = await p.create(req('k1'))
  await p.list()
  await t.rejects(p.get('nope'))
  t.same(p.calls.map((c) => [c.verb, c.ok]), [['create', true], ['list', true], ['get', false]])
  t.equal((p.calls[0]?.arg as LaunchRequest).key, 'k1')
  t.equal((p.calls[0]?.result as { id: string }).id, i.id)
  t.ok(isNotFoundError(p.calls[2]?.error))
})

t.test('injected errors come once each, in order, per verb', async (t) => {
  const p = fakeProvider({ name: 'fake', offerings: [spotA] })
  p.failNext('create', new QuotaError('fake', 'vCPU quota'))
  p.failNext('create', new ProviderUnavailableError('fake', 'API down'))
  p.failNext('list', new ProviderUnavailableError('fake', 'API down'))
  t.ok(isQuotaError(await p.create(req('k')).catch((e: unknown) => e)))
  t.ok(isProviderUnavailableError(await p.create(req('k')).catch((e: unknown) => e)))
  t.equal((await p.create(req('k'))).key, 'k', 'the third create succeeds')
  t.ok(isProviderUnavailableError(await p.list().catch((e: unknown) => e)))
  t.equal((await p.list()).length, 1)
  t.equal(p.createdPerKey.get('k'), 1)
})

t.test('prices and availability can be told; running instances follow the price', async (t) => {
  let now = 1000
  const p = fakeProvider({ name: 'fake', offerings: [spotA, od], now: () => now })
  const i = await p.create(req('k'))
  t.equal(i.launchedAt, 1000, 'launchedAt from the injected clock')
  now = 2000
  p.setPrice((o) => o.spot, 0.5)
  t.equal((await p.get(i.id)).pricePerHour, 0.5)
  t.equal((await p.offerings()).find((o) => o.spot)?.pricePerHour, 0.5)
  p.setAvailable((o) => o.spot, false)
  const e = await p.create(req('k2')).catch((e: unknown) => e)
  t.ok(isInsufficientCapacityError(e), 'spot gone')
  t.equal(offeringId((e as InsufficientCapacityError).offering!), offeringId(spotA), 'the error names the offering')
  t.equal((await p.create(req('k'))).id, i.id, 'an existing key still answers while its offering is gone')
})

t.test('capacity: a pool with n hosts refuses the n+1th', async (t) => {
  const pool: Offering = { provider: 'pool', kind: 'ssh', region: 'hel1', spot: false, pricePerHour: 0, available: true, capacity: 2 }
  const p = fakeProvider({ name: 'pool', kind: 'ssh', offerings: [pool] })
  await p.create(req('a', pool))
  const b = await p.create(req('b', pool))
  t.ok(isInsufficientCapacityError(await p.create(req('c', pool)).catch((e: unknown) => e)))
  await p.delete(b.id)
  t.equal((await p.create(req('c', pool))).key, 'c', 'room again after a delete')
})

t.test('interruptions, seeded orphans and other clusters', async (t) => {
  const p = fakeProvider({ name: 'fake', cluster: 'prod', offerings: [spotA] })
  const i = await p.create(req('k', spotA, 'prod'))
  p.interrupt(i.id)
  t.same(await p.list(), [], 'a reclaimed spot instance is gone without a delete')
  t.ok(isNotFoundError(await p.delete(i.id).catch((e: unknown) => e)))
  p.seed({ id: 'orphan-1', key: 'd1-0-0', provider: 'fake', region: 'r1', spot: true, state: 'running', launchedAt: 0, pricePerHour: 0.2 })
  p.seed({ id: 'foreign-1', key: 'x', provider: 'fake', region: 'r1', spot: true, state: 'running', launchedAt: 0, pricePerHour: 0.2 }, 'staging')
  t.same((await p.list()).map((x) => x.id), ['orphan-1'], 'orphans of this cluster listed, other clusters not')
  t.ok(isNotFoundError(await p.delete('foreign-1').catch((e: unknown) => e)), 'another cluster\'s instance cannot be deleted')
})

t.test('recreateAfterDelete: what a careless provider would do with a reused key', async (t) => {
  const strict = fakeProvider({ name: 'fake', offerings: [spotA] })
  const a = await strict.create(req('k'))
  await strict.delete(a.id)
  t.equal((await strict.create(req('k'))).id, a.id, 'EC2-like: the old (terminated) instance comes back')
  const loose = fakeProvider({ name: 'fake', offerings: [spotA], recreateAfterDelete: true })
  const b = await loose.create(req('k'))
  await loose.delete(b.id)
  t.not((await loose.create(req('k'))).id, b.id)
  t.equal(loose.createdPerKey.get('k'), 2, 'counted, so tests can assert keys are never reused')
})

t.test('error guards match by code, not by class identity', async (t) => {
  const errors = [new NotFoundError('p', 'i'), new InsufficientCapacityError('p', 'x'), new QuotaError('p', 'x'), new ProviderUnavailableError('p', 'x')]
  const guards = [isNotFoundError, isInsufficientCapacityError, isQuotaError, isProviderUnavailableError]
  errors.forEach((e, i) => {
    guards.forEach((g, j) => t.equal(g(e), i === j, `${e.name} vs guard ${j}`))
    t.ok(isProviderError(e))
    const cloned = structuredClone({ code: e.code, message: e.message })
    t.ok(guards[i]!(cloned), `${e.name} survives a structured clone`)
  })
  t.notOk(isProviderError(new Error('x')))
  t.notOk(isNotFoundError(null))
  t.notOk(isNotFoundError('MESHD_PROVIDER_NOT_FOUND'))
})
