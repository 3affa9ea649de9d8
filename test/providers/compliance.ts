/**
 * The provider compliance suite: what every Provider must do at the edges
 * (providers/types.ts), run against each implementation — the fake now, the
 * local, ssh and aws providers as they land:
 *
 *   import { runProviderCompliance } from '../providers/compliance.ts'
 *   await runProviderCompliance(t, async () => ({ provider: await makeMine(), close: ... }))
 *
 * Each check gets a fresh provider from `makeProvider` and deletes what it
 * made. Real providers are eventually consistent (EC2 lists a terminating
 * instance as shutting-down for a while), so "gone" is polled for up to
 * `settleMs`; "never two instances for one key" is checked at once.
 */
import type { Test } from 'tap'
import {
  isInsufficientCapacityError,
  isNotFoundError,
  isProviderError,
  offeringId,
  type Instance,
  type LaunchRequest,
  type Offering,
  type Provider
} from '../../providers/types.ts'

export interface ComplianceSubject {
  provider: Provider
  /** The cluster the provider lists; launch requests carry it. @default 'compliance' */
  cluster?: string
  /**
   * An offering the provider must refuse with InsufficientCapacityError. The
   * fake marks one unavailable; a real provider may return null to skip.
   */
  unavailableOffering?: () => Promise<Offering | null>
  /** A cluster name whose instances this provider must not list; null skips that check. */
  otherCluster?: string | null
  /** Called when the check is over (stop processes, close servers). */
  close?: () => Promise<void>
}

export interface ComplianceOptions {
  /** How long an eventually-consistent provider may take to stop listing a deleted instance. @default 10000 */
  settleMs?: number
  /** Poll interval while waiting to settle. @default 50 */
  pollMs?: number
}

type Maker = () => Promise<ComplianceSubject | Provider> | ComplianceSubject | Provider

function isProvider (x: ComplianceSubject | Provider): x is Provider {
  return typeof (x as Provider).create === 'function'
}

async function open (make: Maker): Promise<ComplianceSubject> {
  const made = await make()
  return isProvider(made) ? { provider: made } : made
}

function request (subject: ComplianceSubject, key: string, offering: Offering, cluster?: string): LaunchRequest {
  return {
    key,
    cluster: cluster ?? subject.cluster ?? 'compliance',
    offering,
    replica: { models: ['compliance-model'], slots: 1, command: 'sim' },
    node: { name: `compliance-${key}`, config: {} },
    bootstrap: { peers: [] }
  }
}

async function firstAvailable (p: Provider): Promise<Offering> {
  const all = await p.offerings()
  const o = all.find((x) => x.available)
  if (o === undefined) throw new Error(`${p.name}: the compliance suite needs at least one available offering`)
  return o
}

async function rejection (p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (e) {
    return e
  }
  return undefined
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** Waits until `id` is not listed any more; returns whether it got there in time. */
async function settlesGone (p: Provider, id: string, opts: Required<ComplianceOptions>): Promise<boolean> {
  const until = performance.now() + opts.settleMs
  for (;;) {
    const listed = (await p.list()).find((i) => i.id === id)
    if (listed === undefined) return true
    if (performance.now() >= until) return false
    await sleep(opts.pollMs)
  }
}

const LIVE: ReadonlyArray<Instance['state']> = ['pending', 'running']

export async function runProviderCompliance (t: Test, makeProvider: Maker, options: ComplianceOptions = {}): Promise<void> {
  const opts: Required<ComplianceOptions> = { settleMs: options.settleMs ?? 10_000, pollMs: options.pollMs ?? 50 }

  /** Runs one check on a fresh provider; deletes whatever the check created. */
  const check = (name: string, body: (t: Test, s: ComplianceSubject, made: Instance[]) => Promise<void>): void => {
    t.test(name, async (t) => {
      const s = await open(makeProvider)
      const made: Instance[] = []
      try {
        await body(t, s, made)
      } finally {
        for (const i of made) {
          const e = await rejection(s.provider.delete(i.id))
          if (e !== undefined && !isNotFoundError(e)) t.fail(`cleanup: delete ${i.id} failed with ${String(e)}`)
        }
        await s.close?.()
      }
    })
  }

  check('offerings are plain data naming this provider', async (t, s) => {
    const all = await s.provider.offerings()
    t.ok(Array.isArray(all), 'an array')
    t.ok(all.length > 0, 'at least one offering')
    for (const o of all) {
      t.equal(o.provider, s.provider.name, `${offeringId(o)}: provider is the config name`)
      t.equal(o.kind, s.provider.kind, `${offeringId(o)}: kind`)
      t.ok(Number.isFinite(o.pricePerHour) && o.pricePerHour >= 0, `${offeringId(o)}: a finite price >= 0`)
      t.equal(typeof o.spot, 'boolean')
      t.equal(typeof o.available, 'boolean')
      t.ok(typeof o.region === 'string' && o.region.length > 0, 'a region')
      if (o.capacity !== undefined) t.ok(Number.isInteger(o.capacity) && o.capacity >= 0, 'capacity is a count')
    }
    t.same(JSON.parse(JSON.stringify(all)), all, 'survives JSON (plain data)')
  })

  check('create returns a tagged instance that list() shows', async (t, s, made) => {
    const o = await firstAvailable(s.provider)
    const i = await s.provider.create(request(s, 'cmp-create-1', o))
    made.push(i)
    t.equal(i.key, 'cmp-create-1', 'carries its key')
    t.equal(i.provider, s.provider.name)
    t.ok(LIVE.includes(i.state), `pending or running, got ${i.state}`)
    t.equal(i.spot, o.spot, 'on the market it was asked for')
    t.equal(i.region, o.region)
    t.ok(Number.isFinite(i.launchedAt), 'launchedAt is a time')
    t.ok(Number.isFinite(i.pricePerHour) && i.pricePerHour >= 0, 'a price')
    const listed = (await s.provider.list()).filter((x) => x.key === 'cmp-create-1')
    t.equal(listed.length, 1, 'listed once')
    t.equal(listed[0]?.id, i.id)
    const got = await s.provider.get(i.id)
    t.equal(got.id, i.id, 'get() finds it')
    t.equal(got.key, i.key)
  })

  check('create is idempotent by key, also when called concurrently', async (t, s, made) => {
    const o = await firstAvailable(s.provider)
    const a = await s.provider.create(request(s, 'cmp-idem-1', o))
    made.push(a)
    const b = await s.provider.create(request(s, 'cmp-idem-1', o))
    t.equal(b.id, a.id, 'the same key twice gives the same instance')
    const [c, d] = await Promise.all([
      s.provider.create(request(s, 'cmp-idem-2', o)),
      s.provider.create(request(s, 'cmp-idem-2', o))
    ])
    made.push(c)
    t.equal(d.id, c.id, 'two concurrent creates of one key give one instance')
    t.not(c.id, a.id, 'different keys give different instances')
    const listed = await s.provider.list()
    t.equal(listed.filter((x) => x.key === 'cmp-idem-1').length, 1, 'one instance listed for the first key')
    t.equal(listed.filter((x) => x.key === 'cmp-idem-2').length, 1, 'one instance listed for the second key')
  })

  check('delete: the instance leaves list(), then get() and delete() say NotFoundError', async (t, s, made) => {
    const o = await firstAvailable(s.provider)
    const keep = await s.provider.create(request(s, 'cmp-del-keep', o))
    made.push(keep)
    const gone = await s.provider.create(request(s, 'cmp-del-gone', o))
    await s.provider.delete(gone.id)
    const right = (await s.provider.list()).find((x) => x.id === gone.id)
    t.ok(right === undefined || right.state === 'stopping', 'right after delete it is stopping or gone')
    t.ok(await settlesGone(s.provider, gone.id, opts), `gone from list() within ${opts.settleMs} ms`)
    t.ok((await s.provider.list()).some((x) => x.id === keep.id), 'the other instance is still listed')
    t.ok(isNotFoundError(await rejection(s.provider.get(gone.id))), 'get() of a deleted instance: NotFoundError')
    t.ok(isNotFoundError(await rejection(s.provider.delete(gone.id))), 'deleting it again: NotFoundError')
  })

  check('a deleted key never comes back as a second instance', async (t, s) => {
    const o = await firstAvailable(s.provider)
    const a = await s.provider.create(request(s, 'cmp-reuse-1', o))
    await s.provider.delete(a.id)
    t.ok(await settlesGone(s.provider, a.id, opts), 'gone')
    let again: Instance | undefined
    let error: unknown
    try {
      again = await s.provider.create(request(s, 'cmp-reuse-1', o))
    } catch (e) {
      error = e
    }
    if (again !== undefined) {
      t.equal(again.id, a.id, 'create of the same key resolves to the old instance')
      t.equal(again.state, 'terminated', '... as terminated')
    } else {
      // A typed refusal the leader can record, not an arbitrary crash.
      t.ok(isProviderError(error), `or rejects with a ProviderError (${String(error)})`)
    }
    t.notOk((await s.provider.list()).some((x) => x.key === 'cmp-reuse-1'), 'nothing runs under that key')
  })

  check('unknown ids: NotFoundError from get() and delete()', async (t, s) => {
    const e1 = await rejection(s.provider.get('cmp-no-such-instance'))
    t.ok(isNotFoundError(e1), `get(): NotFoundError, got ${String(e1)}`)
    const e2 = await rejection(s.provider.delete('cmp-no-such-instance'))
    t.ok(isNotFoundError(e2), `delete(): NotFoundError, got ${String(e2)}`)
    t.equal((e2 as { provider?: string }).provider, s.provider.name, 'the error names the provider')
  })

  check('an unavailable offering: InsufficientCapacityError, nothing created', async (t, s) => {
    const o = s.unavailableOffering === undefined ? null : await s.unavailableOffering()
    if (o === null) {
      t.pass('skipped: this provider cannot be made to refuse an offering')
      return
    }
    const before = (await s.provider.list()).length
    const e = await rejection(s.provider.create(request(s, 'cmp-ice-1', o)))
    t.ok(isInsufficientCapacityError(e), `InsufficientCapacityError, got ${String(e)}`)
    t.equal((await s.provider.list()).length, before, 'nothing was created')
  })

  check("list() never shows another cluster's instances", async (t, s, made) => {
    if (s.otherCluster === undefined || s.otherCluster === null) {
      t.pass('skipped: no other cluster to create in')
      return
    }
    const o = await firstAvailable(s.provider)
    const other = await s.provider.create(request(s, 'cmp-foreign-1', o, s.otherCluster))
    made.push(other)
    t.notOk((await s.provider.list()).some((x) => x.id === other.id), 'not listed')
  })
}
