/**
 * The aws provider against an in-memory EC2 model behind aws-sdk-client-mock
 * (aws-ec2-model.ts): request shapes checked field by field, the typed
 * errors, the unavailable cache on a fake clock, idempotency, pagination, and
 * the provider compliance suite.
 */
import t from 'tap'
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  DeleteLaunchTemplateCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSpotPriceHistoryCommand,
  TerminateInstancesCommand
} from '@aws-sdk/client-ec2'
import { awsProvider, Ec2Clients, type AwsProvider, type AwsProviderInit } from '../../providers/aws/index.ts'
import { bootSpecSchema, TAGS } from '../../providers/aws/boot-spec.ts'
import {
  isInsufficientCapacityError,
  isNotFoundError,
  isProviderUnavailableError,
  isQuotaError,
  type LaunchRequest,
  type Offering
} from '../../providers/types.ts'
import { runProviderCompliance } from './compliance.ts'
import { Ec2Model, ec2Error } from './aws-ec2-model.ts'
import { offlineAws } from '../helpers/aws-env.ts'

offlineAws()

const SWARM_KEY = '/key/swarm/psk/1.0.0/\n/base16/\n' + 'ab'.repeat(32) + '\n'

function model (): Ec2Model {
  return new Ec2Model({
    zones: { 'us-east-1': ['us-east-1a', 'us-east-1b'], 'us-west-2': ['us-west-2a'] },
    spot: {
      'us-east-1': {
        'us-east-1a': { 'c7a.4xlarge': 0.30, 'r7a.4xlarge': 0.45, 'm7a.4xlarge': 0.28 },
        'us-east-1b': { 'c7a.4xlarge': 0.32, 'r7a.4xlarge': 0.25, 'm7a.4xlarge': 0.40 }
      },
      'us-west-2': { 'us-west-2a': { 'c7a.4xlarge': 0.31, 'r7a.4xlarge': 0.5, 'm7a.4xlarge': 0.29 } }
    }
  })
}

interface Clock { now: () => number, advance: (ms: number) => void }
function clock (): Clock {
  let t0 = 1_800_000_000_000
  return { now: () => t0, advance: (ms) => { t0 += ms } }
}

function provider (over: Partial<AwsProviderInit> = {}): AwsProvider {
  return awsProvider({
    name: 'aws-spot',
    cluster: 'test',
    regions: ['us-east-1', 'us-west-2'],
    instanceTypes: ['c7a.4xlarge', 'r7a.4xlarge', 'm7a.4xlarge'],
    imageIds: { 'us-east-1': 'ami-0123456789abcdef0', 'us-west-2': 'ami-0fedcba9876543210' },
    subnetIds: { 'us-east-1a': 'subnet-aaa' },
    securityGroupIds: ['sg-1'],
    zones: { 'us-west-2': ['us-west-2a'] },
    bundle: { url: 'https://example.invalid/meshd.tar.gz', sha256: 'f'.repeat(64) },
    swarmKeyText: () => SWARM_KEY,
    iamInstanceProfile: 'meshd-burst',
    defaults: { burst: { ttl: '8h' } },
    clients: new Ec2Clients({ endpoint: null }),
    ...over
  })
}

function req (key: string, offering: Offering, cluster = 'test'): LaunchRequest {
  return {
    key,
    cluster,
    offering,
    replica: { models: ['m'], slots: 2, command: 'sim' },
    node: { name: `burst-${key}`, config: { region: offering.region, spot: offering.spot, cost_per_hour: offering.pricePerHour, instance: { provider: 'aws-spot', key } } },
    bootstrap: { peers: ['/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWB', '/ip4/10.0.0.8/tcp/4001/p2p/12D3KooWA'] }
  }
}

async function offeringOf (p: AwsProvider, zone: string, type: string, spot: boolean): Promise<Offering> {
  const o = (await p.offerings()).find((x) => x.zone === zone && x.instanceType === type && x.spot === spot)
  if (o === undefined) throw new Error(`no offering ${zone} ${type} ${spot}`)
  return o
}

async function rejection (p: Promise<unknown>): Promise<unknown> {
  try { await p } catch (e) { return e }
  return undefined
}

t.test('compliance: the aws provider against the EC2 model', async (t) => {
  await runProviderCompliance(t, async () => {
    const m = model()
    const p = provider()
    return {
      provider: p,
      cluster: 'test',
      otherCluster: 'someone-else',
      unavailableOffering: async () => {
        const o = await offeringOf(p, 'us-west-2a', 'm7a.4xlarge', true)
        // m7a is the cheapest in that zone: its fleet has no other type to fall back on.
        m.refuse.set('us-west-2/us-west-2a/m7a.4xlarge/spot', 'InsufficientInstanceCapacity')
        return o
      },
      close: async () => { p.close(); m.restore() }
    }
  })
})

t.test('offerings: one per (type, zone, market), spot from the latest price, on-demand from the table', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const p = provider({ onDemandPrices: { 'm7a.4xlarge': 0.9 } })
  const all = await p.offerings()
  t.equal(all.length, 3 * 3 * 2, '3 types × 3 zones × 2 markets')
  const s = all.find((o) => o.zone === 'us-east-1a' && o.instanceType === 'c7a.4xlarge' && o.spot)!
  t.equal(s.pricePerHour, 0.30, 'the latest spot price, not the older record')
  t.same({ region: s.region, kind: s.kind, provider: s.provider, available: s.available }, { region: 'us-east-1', kind: 'aws', provider: 'aws-spot', available: true })
  t.equal(all.find((o) => o.zone === 'us-east-1b' && o.instanceType === 'c7a.4xlarge' && !o.spot)?.pricePerHour, 0.82112, 'on-demand from the shipped table')
  t.equal(all.find((o) => o.zone === 'us-west-2a' && o.instanceType === 'm7a.4xlarge' && !o.spot)?.pricePerHour, 0.9, 'on_demand_prices overrides the table')
  const history = await m.calls(DescribeSpotPriceHistoryCommand)
  const east = history.filter((c) => c.region === 'us-east-1')
  t.ok(east.length >= 3, `spot history read page by page (${east.length} pages)`)
  t.same(east[0]?.input.ProductDescriptions, ['Linux/UNIX'])
  t.same(east[0]?.input.InstanceTypes, ['c7a.4xlarge', 'r7a.4xlarge', 'm7a.4xlarge'])
  t.equal(east[1]?.input.NextToken, '2', 'the next page by NextToken')
  // Cached: a second call reads nothing.
  await p.offerings()
  t.equal((await m.calls(DescribeSpotPriceHistoryCommand)).length, history.length, 'prices cached within price_refresh')
  p.close()
})

t.test('offerings: a failed price refresh keeps the last prices and says so; a type with no price is left out, logged', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const c = clock()
  const warnings: string[] = []
  const p = provider({ now: c.now, priceRefreshMs: 300_000, instanceTypes: ['c7a.4xlarge', 'x9.unknown'], regions: ['us-east-1'], log: { info: () => {}, warn: (_o, msg) => { warnings.push(msg) } } })
  const before = await p.offerings()
  t.ok(warnings.some((w) => w.includes('x9.unknown left out')), `the unpriced type is named: ${warnings.join(' | ')}`)
  t.notOk(before.some((o) => o.instanceType === 'x9.unknown'), 'and not offered')
  c.advance(300_000)
  m.failNext('DescribeSpotPriceHistory', ec2Error('InternalError', 500))
  m.spot['us-east-1']!['us-east-1a']!['c7a.4xlarge'] = 0.99
  const after = await p.offerings()
  t.equal(after.find((o) => o.zone === 'us-east-1a' && o.instanceType === 'c7a.4xlarge' && o.spot)?.pricePerHour, 0.30, 'the last prices kept')
  t.ok(warnings.some((w) => /spot prices from 5 min ago kept: refresh failed/.test(w)), 'and it says so')
  c.advance(60_000)
  const fresh = await p.offerings()
  t.equal(fresh.find((o) => o.zone === 'us-east-1a' && o.instanceType === 'c7a.4xlarge' && o.spot)?.pricePerHour, 0.99, 'read again once the endpoint answers')
  p.close()
})

t.test('create: one CreateFleet, overrides of every no-dearer type in the zone, the allocation strategy, ClientToken, tags, user data', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const p = provider()
  const o = await offeringOf(p, 'us-east-1a', 'c7a.4xlarge', true) // 0.30; m7a 0.28 cheaper, r7a 0.45 dearer
  const inst = await p.create(req('d7-0', o))
  t.match(inst, { key: 'd7-0', provider: 'aws-spot', region: 'us-east-1', zone: 'us-east-1a', spot: true, state: 'pending', pricePerHour: 0.30 })
  const [fleet] = await m.calls(CreateFleetCommand)
  t.equal(fleet?.region, 'us-east-1')
  const f = fleet!.input
  t.equal(f.Type, 'instant')
  t.same(f.TargetCapacitySpecification, { TotalTargetCapacity: 1, DefaultTargetCapacityType: 'spot' })
  t.same(f.SpotOptions, { AllocationStrategy: 'price-capacity-optimized' })
  t.equal(f.OnDemandOptions, undefined)
  t.match(f.ClientToken, /^d7-0-[0-9a-f]{10}$/, 'the key, made specific to the offering')
  const cfg = f.LaunchTemplateConfigs[0]
  t.match(cfg.LaunchTemplateSpecification, { LaunchTemplateName: /^meshd-test-aws-spot-[0-9a-f]{12}$/, Version: '$Latest' })
  t.same(cfg.Overrides, [
    { InstanceType: 'c7a.4xlarge', AvailabilityZone: 'us-east-1a', SubnetId: 'subnet-aaa' },
    { InstanceType: 'm7a.4xlarge', AvailabilityZone: 'us-east-1a', SubnetId: 'subnet-aaa' }
  ], 'the offering\'s type and the cheaper one, in its zone and subnet; not the dearer r7a')
  const tags = [
    { Key: TAGS.cluster, Value: 'test' },
    { Key: TAGS.key, Value: 'd7-0' },
    { Key: TAGS.decision, Value: 'd7' },
    { Key: TAGS.provider, Value: 'aws-spot' },
    { Key: TAGS.price, Value: '0.3' },
    { Key: 'Name', Value: 'burst-d7-0' }
  ]
  t.same(f.TagSpecifications, [{ ResourceType: 'instance', Tags: tags }, { ResourceType: 'volume', Tags: tags }])

  const [made] = await m.calls(CreateLaunchTemplateCommand)
  t.equal(made?.input.LaunchTemplateName, cfg.LaunchTemplateSpecification.LaunchTemplateName)
  t.equal(made?.input.ClientToken, made?.input.LaunchTemplateName)
  const data = made!.input.LaunchTemplateData
  t.same(data.MetadataOptions, { HttpTokens: 'required', HttpEndpoint: 'enabled', InstanceMetadataTags: 'enabled' })
  t.same(data.IamInstanceProfile, { Name: 'meshd-burst' })
  t.same(data.SecurityGroupIds, ['sg-1'])
  t.equal(data.ImageId, 'ami-0123456789abcdef0')
  const script = Buffer.from(data.UserData as string, 'base64').toString('utf8')
  t.match(script, /^#!\/bin\/sh\n/, 'user data is base64 of the script')
  t.match(script, /curl -fsSL .* 'https:\/\/example.invalid\/meshd.tar.gz'/)
  t.match(script, /sha256sum -c/)
  t.match(script, /exec '\/opt\/meshd\/current\/bin\/meshd' boot-ec2 --spec '\/etc\/meshd\/boot.json'\n$/)
  const json = script.split('\n').find((l) => l.startsWith('{"v":'))!
  const spec = bootSpecSchema.parse(JSON.parse(json))
  t.same(spec.swarm_key, { from: 'user_data', key: SWARM_KEY })
  t.equal(spec.config.voter, false)
  t.same((spec.config.mesh as { bootstrap: string[] }).bootstrap, ['/ip4/10.0.0.8/tcp/4001/p2p/12D3KooWA', '/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWB'], 'peers sorted')
  for (const k of ['node_name', 'instance', 'region', 'zone', 'spot', 'cost_per_hour']) t.notOk(k in spec.config, `${k} is left to boot`)

  // A second launch with the same settings reuses the template; an on-demand one uses lowest-price.
  const od = await offeringOf(p, 'us-east-1b', 'r7a.4xlarge', false)
  await p.create(req('d7-1', od))
  t.equal((await m.calls(CreateLaunchTemplateCommand)).length, 1, 'the template is made once')
  // Another region: its own template, with that region's AMI (AMI ids are regional).
  await p.create(req('d7-2', await offeringOf(p, 'us-west-2a', 'c7a.4xlarge', true)))
  const made2 = (await m.calls(CreateLaunchTemplateCommand))
  t.equal(made2.length, 2, 'a template per region')
  t.equal(made2[1]!.input.LaunchTemplateData!.ImageId, 'ami-0fedcba9876543210', "us-west-2's AMI")
  const second = (await m.calls(CreateFleetCommand))[1]!.input // d7-1, the on-demand one
  t.same(second.OnDemandOptions, { AllocationStrategy: 'lowest-price' })
  t.equal(second.SpotOptions, undefined)
  t.same(second.TargetCapacitySpecification, { TotalTargetCapacity: 1, DefaultTargetCapacityType: 'on-demand' })
  t.same(second.LaunchTemplateConfigs[0].Overrides.map((x: { InstanceType: string }) => x.InstanceType), ['r7a.4xlarge', 'c7a.4xlarge', 'm7a.4xlarge'], 'on-demand: every type no dearer than r7a\'s 1.217')
  t.equal(second.LaunchTemplateConfigs[0].Overrides[0].SubnetId, undefined, 'no subnet configured for that zone')
  p.close()
})

t.test('create: a user launch template is used as given, image_id overriding its AMI; no template is made', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const p = provider({ launchTemplate: { id: 'lt-0abc', version: '3' } })
  await p.create(req('u-0', await offeringOf(p, 'us-east-1b', 'c7a.4xlarge', true)))
  const f = (await m.calls(CreateFleetCommand))[0]!.input
  t.same(f.LaunchTemplateConfigs[0].LaunchTemplateSpecification, { LaunchTemplateId: 'lt-0abc', Version: '3' })
  t.ok(f.LaunchTemplateConfigs[0].Overrides.every((o: { ImageId?: string }) => o.ImageId === 'ami-0123456789abcdef0'), 'ImageId on every override')
  t.equal((await m.calls(CreateLaunchTemplateCommand)).length, 0)
  t.equal((await m.calls(DescribeLaunchTemplatesCommand)).length, 0)
  p.close()
})

t.test('create: capacity refused in Errors → InsufficientCapacityError naming them; the offering unavailable for unavailable_for, not asked again', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const c = clock()
  const p = provider({ now: c.now, unavailableForMs: 180_000 })
  const o = await offeringOf(p, 'us-east-1b', 'c7a.4xlarge', true) // 0.32: overrides c7a and r7a (0.25)
  m.refuse.set('us-east-1/us-east-1b/c7a.4xlarge/spot', 'InsufficientInstanceCapacity')
  m.refuse.set('us-east-1/us-east-1b/r7a.4xlarge/spot', 'SpotMaxPriceTooLow')
  const e = await rejection(p.create(req('ice-0', o)))
  t.ok(isInsufficientCapacityError(e), `InsufficientCapacityError, got ${String(e)}`)
  t.match((e as Error).message, /c7a\.4xlarge us-east-1b spot: InsufficientInstanceCapacity/)
  t.match((e as Error).message, /r7a\.4xlarge us-east-1b spot: SpotMaxPriceTooLow/)
  t.equal((e as { offering?: Offering }).offering, o, 'names the offering asked for')
  t.equal((await m.calls(CreateFleetCommand)).length, 1, 'one call for the refusal')

  const after = await p.offerings()
  const state = (zone: string, type: string, spot: boolean): boolean | undefined => after.find((x) => x.zone === zone && x.instanceType === type && x.spot === spot)?.available
  t.equal(state('us-east-1b', 'c7a.4xlarge', true), false, 'refused offering unavailable')
  t.equal(state('us-east-1b', 'r7a.4xlarge', true), false, 'every refused override too')
  t.equal(state('us-east-1b', 'c7a.4xlarge', false), true, 'on-demand there is another offering')
  t.equal(state('us-east-1a', 'c7a.4xlarge', true), true, 'another zone is untouched')

  // A fallback to the same refused (type, zone, market) costs no call.
  const again = await rejection(p.create(req('ice-1', o)))
  t.ok(isInsufficientCapacityError(again))
  t.match((again as Error).message, /not asked again for 180 s/)
  t.equal((await m.calls(CreateFleetCommand)).length, 1, 'no second CreateFleet while it is unavailable')

  // The next zone (the launcher's fallback) launches, with the key's other token.
  const next = await p.create(req('ice-0', await offeringOf(p, 'us-east-1a', 'c7a.4xlarge', true)))
  t.equal(next.zone, 'us-east-1a')
  const tokens = (await m.calls(CreateFleetCommand)).map((x) => x.input.ClientToken)
  t.not(tokens[0], tokens[1], 'one ClientToken per (key, offering): EC2 would answer IdempotentParameterMismatch otherwise')

  c.advance(180_000)
  t.equal((await p.offerings()).find((x) => x.zone === 'us-east-1b' && x.instanceType === 'c7a.4xlarge' && x.spot)?.available, true, 'available again after unavailable_for')
  p.close()
})

t.test('create: account limits → QuotaError; other EC2 errors name EC2\'s code; throttling and network → ProviderUnavailableError', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const p = provider()
  const o = await offeringOf(p, 'us-east-1a', 'c7a.4xlarge', true)
  m.fleetErrorCode = 'VcpuLimitExceeded'
  const q = await rejection(p.create(req('q-0', o)))
  t.ok(isQuotaError(q), `QuotaError, got ${String(q)}`)
  t.match((q as Error).message, /VcpuLimitExceeded/)
  m.fleetErrorCode = null

  m.failNext('CreateFleet', ec2Error('InstanceLimitExceeded', 400))
  t.ok(isQuotaError(await rejection(p.create(req('q-1', o)))), 'InstanceLimitExceeded as an HTTP error: QuotaError')

  m.failNext('CreateFleet', ec2Error('RequestLimitExceeded', 503))
  const th = await rejection(p.create(req('q-2', o)))
  t.ok(isProviderUnavailableError(th), `throttled past the retries: ProviderUnavailableError, got ${String(th)}`)

  m.failNext('CreateFleet', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))
  t.ok(isProviderUnavailableError(await rejection(p.create(req('q-3', o)))), 'a network error: ProviderUnavailableError')

  m.failNext('CreateFleet', ec2Error('InvalidAMIID.NotFound', 400, "The image id '[ami-0123456789abcdef0]' does not exist"))
  const other = await rejection(p.create(req('q-4', o)))
  t.notOk(isProviderUnavailableError(other) || isInsufficientCapacityError(other) || isQuotaError(other), 'not a retryable kind')
  t.match((other as Error).message, /CreateFleet: InvalidAMIID\.NotFound: The image id/)
  p.close()
})

t.test('create: idempotent by key — the tag is looked up first when this object did not see the outcome', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const o = await offeringOf(provider(), 'us-east-1a', 'c7a.4xlarge', true)
  // A leader launched it and died before recording the outcome.
  const old = provider()
  const first = await old.create(req('k-9', o))
  old.close()
  m.honourTokens = false // an endpoint that ignores ClientToken: only the tag look-up prevents a duplicate
  const fresh = provider()
  const again = await fresh.create(req('k-9', o))
  t.equal(again.id, first.id, 'the new leader\'s provider finds the instance by its tag')
  t.equal((await m.calls(CreateFleetCommand)).length, 1, 'no second CreateFleet')
  const lookups = (await m.calls(DescribeInstancesCommand)).filter((c) => c.input.Filters?.some((f: { Name: string }) => f.Name === `tag:${TAGS.key}`))
  t.ok(lookups.length >= 2, 'looked up in every region')
  t.same(lookups[lookups.length - 1]!.input.Filters, [{ Name: `tag:${TAGS.cluster}`, Values: ['test'] }, { Name: `tag:${TAGS.key}`, Values: ['k-9'] }], 'by cluster and key, every state')

  // The object that launched it does not look it up again.
  const before = (await m.calls(DescribeInstancesCommand)).length
  const third = await fresh.create(req('k-9', o))
  t.equal(third.id, first.id)
  const tagLookups = (await m.calls(DescribeInstancesCommand)).slice(before).filter((c) => c.input.Filters !== undefined)
  t.equal(tagLookups.length, 0, 'known keys are described by id, not looked up')

  // Deleted, it comes back as terminated, never as a second instance.
  await fresh.delete(first.id)
  await fresh.list()
  await fresh.list()
  const gone = await provider().create(req('k-9', o))
  t.equal(gone.id, first.id)
  t.equal(gone.state, 'terminated')
  t.equal((await m.calls(CreateFleetCommand)).length, 1)
  fresh.close()
})

t.test('create: a lost answer (network error) is looked up again before the next attempt, with the same ClientToken', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const p = provider()
  const o = await offeringOf(p, 'us-east-1a', 'c7a.4xlarge', true)
  // The fleet launched, the answer was lost.
  m.mock.on(CreateFleetCommand).callsFakeOnce(async (input: unknown, getClient: () => any) => {
    const region = await getClient().config.region()
    ;(m as unknown as { createFleet: (i: unknown, r: string) => unknown }).createFleet(input, region)
    throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
  })
  t.ok(isProviderUnavailableError(await rejection(p.create(req('lost-0', o)))))
  const inst = await p.create(req('lost-0', o))
  t.equal(m.instances.size, 1, 'one instance')
  t.equal(inst.id, [...m.instances.keys()][0], 'found by its tag')
  t.equal((await m.calls(CreateFleetCommand)).length, 1, 'not launched again')
  p.close()
})

t.test('list: every region, paginated, this cluster and provider only, mapped', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const p = provider()
  const made = []
  for (const [i, zone] of ['us-east-1a', 'us-east-1b', 'us-east-1a', 'us-west-2a', 'us-east-1b'].entries()) made.push(await p.create(req(`l-${i}`, await offeringOf(p, zone, 'c7a.4xlarge', i !== 4))))
  // One of another cluster, one by hand (cluster tag only), one of another provider of this cluster.
  await p.create(req('other-0', await offeringOf(p, 'us-east-1a', 'c7a.4xlarge', true), 'other'))
  m.instances.set('i-00000000000000abc', { region: 'us-east-1', InstanceId: 'i-00000000000000abc', InstanceType: 'r7a.4xlarge', Placement: { AvailabilityZone: 'us-east-1b' }, State: { Name: 'running' }, LaunchTime: new Date(1_000), Tags: [{ Key: TAGS.cluster, Value: 'test' }] })
  m.instances.set('i-00000000000000abd', { region: 'us-east-1', InstanceId: 'i-00000000000000abd', State: { Name: 'running' }, LaunchTime: new Date(1_000), Tags: [{ Key: TAGS.cluster, Value: 'test' }, { Key: TAGS.provider, Value: 'aws-ondemand' }] })
  const before = (await m.calls(DescribeInstancesCommand)).length
  const listed = await p.list()
  t.same(listed.map((i) => i.key).sort(), ['aws-spot:i-00000000000000abc', 'l-0', 'l-1', 'l-2', 'l-3', 'l-4'], 'ours and the hand-made one; not another cluster\'s or provider\'s')
  const calls = (await m.calls(DescribeInstancesCommand)).slice(before)
  const east = calls.filter((c) => c.region === 'us-east-1')
  t.ok(east.length >= 3, `us-east-1 read in pages (${east.length})`)
  t.same(east[0]!.input.Filters, [{ Name: `tag:${TAGS.cluster}`, Values: ['test'] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }])
  t.equal(east[1]!.input.NextToken, '2')
  t.ok(calls.some((c) => c.region === 'us-west-2'), 'every region')
  const hand = listed.find((i) => i.id === 'i-00000000000000abc')!
  t.match(hand, { region: 'us-east-1', zone: 'us-east-1b', spot: false, state: 'running', launchedAt: 1_000, instanceType: 'r7a.4xlarge', pricePerHour: 1.21728 }, 'no price tag: the on-demand price in force')
  const l4 = listed.find((i) => i.key === 'l-4')!
  t.match(l4, { spot: false, pricePerHour: 0.82112, state: 'running' })
  t.ok(listed.find((i) => i.key === 'l-0')?.address?.startsWith('10.0.0.'), 'its private address')
  p.close()
})

t.test('get / delete: unknown, malformed, other-cluster and terminated ids are NotFoundError; shutting-down resolves again', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const p = provider()
  const o = await offeringOf(p, 'us-west-2a', 'c7a.4xlarge', true)
  const a = await p.create(req('g-0', o))
  const other = await p.create(req('g-1', o, 'other'))
  t.equal((await provider().get(a.id)).key, 'g-0', 'a fresh object finds it in whichever region')
  t.ok(isNotFoundError(await rejection(p.get(other.id))), 'another cluster\'s instance: NotFoundError')
  t.ok(isNotFoundError(await rejection(p.delete(other.id))))
  t.ok(isNotFoundError(await rejection(p.get('i-0123456789abcdef0'))), 'unknown id')
  t.ok(isNotFoundError(await rejection(p.get('not-an-id'))), 'malformed id')
  await p.delete(a.id)
  t.same((await m.calls(TerminateInstancesCommand)).map((c) => c.input), [{ InstanceIds: [a.id] }])
  await p.delete(a.id)
  t.equal((await m.calls(TerminateInstancesCommand)).length, 1, 'shutting-down: resolves, not terminated twice')
  await p.list()
  t.ok(isNotFoundError(await rejection(p.delete(a.id))), 'terminated: NotFoundError')
  t.ok(isNotFoundError(await rejection(p.get(a.id))))
  p.close()
})

t.test('launch templates unused for a day are deleted, the ones in use kept', async (t) => {
  const m = model()
  t.teardown(() => { m.restore() })
  const c = clock()
  const p = provider({ now: c.now, regions: ['us-east-1'] })
  m.templates.set('us-east-1/meshd-test-aws-spot-000000000000', {})
  m.templates.set('us-east-1/someone-elses', {})
  const o = await offeringOf(p, 'us-east-1a', 'c7a.4xlarge', true)
  await p.create(req('t-0', o))
  c.advance(25 * 3_600_000)
  await p.create(req('t-1', o))
  await p.sweepTemplates()
  const deleted = (await m.calls(DeleteLaunchTemplateCommand)).map((x) => x.input.LaunchTemplateName)
  t.same(deleted, ['meshd-test-aws-spot-000000000000'], 'only the old meshd one of this provider')
  t.equal([...m.templates.keys()].filter((k) => k.includes('meshd-test-aws-spot-')).length, 1, 'the one in use stays')
  p.close()
})
