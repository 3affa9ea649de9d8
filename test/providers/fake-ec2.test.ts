/**
 * The fake EC2 endpoint (test/helpers/fake-ec2) speaks EC2 as the real
 * @aws-sdk/client-ec2 expects: every action meshd uses, driven through the
 * SDK over HTTP, parses; errors arrive as EC2ServiceException named by
 * EC2's code with EC2's status; pagination, ClientToken idempotency (and
 * its absence), capacity refusals in CreateFleet's Errors, throttling,
 * DryRun, interruption and rebalance notices on an instance's IMDS.
 * Instances here are records (machines: 'bare'); the boot test runs them.
 */
import t from 'tap'
import {
  EC2Client, EC2ServiceException, CreateFleetCommand, CreateLaunchTemplateCommand, DeleteLaunchTemplateCommand,
  DescribeAvailabilityZonesCommand, DescribeInstancesCommand, DescribeLaunchTemplatesCommand,
  TerminateInstancesCommand, paginateDescribeInstances, paginateDescribeSpotPriceHistory, type CreateFleetCommandInput, type _InstanceType
} from '@aws-sdk/client-ec2'
import { SSMClient, GetParameterCommand } from '@aws-sdk/client-ssm'
import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager'
import { MetadataService } from '@aws-sdk/ec2-metadata-service'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startFakeEc2, type FakeEc2 } from '../helpers/fake-ec2/index.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { tempDir } from '../helpers/tmp.ts'
import { offlineAws } from '../helpers/aws-env.ts'

offlineAws()

function client (fake: FakeEc2, region = 'us-east-1', maxAttempts = 1): EC2Client {
  return new EC2Client({ region, endpoint: fake.url, maxAttempts })
}

async function ec2Error (p: Promise<unknown>): Promise<EC2ServiceException> {
  try {
    await p
  } catch (err) {
    if (err instanceof EC2ServiceException) return err
    throw err
  }
  throw new Error('expected an EC2 error, the call succeeded')
}

async function template (ec2: EC2Client, name = 'meshd-test-0123456789ab', userData = '#!/bin/sh\necho hi\n'): Promise<string> {
  const r = await ec2.send(new CreateLaunchTemplateCommand({
    LaunchTemplateName: name,
    ClientToken: `ct-${name}`,
    LaunchTemplateData: { ImageId: 'ami-0123456789abcdef0', UserData: Buffer.from(userData).toString('base64'), MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', InstanceMetadataTags: 'enabled' } }
  }))
  return r.LaunchTemplate!.LaunchTemplateId!
}

function fleet (key: string, over: Array<{ type: string, zone: string }>, market: 'spot' | 'on-demand' = 'spot', name = 'meshd-test-0123456789ab'): CreateFleetCommandInput {
  return {
    Type: 'instant',
    ClientToken: key,
    TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: market },
    SpotOptions: { AllocationStrategy: 'price-capacity-optimized' },
    OnDemandOptions: { AllocationStrategy: 'lowest-price' },
    LaunchTemplateConfigs: [{ LaunchTemplateSpecification: { LaunchTemplateName: name, Version: '$Latest' }, Overrides: over.map((o) => ({ InstanceType: o.type as _InstanceType, AvailabilityZone: o.zone, SubnetId: `subnet-${o.zone}` })) }],
    TagSpecifications: [
      { ResourceType: 'instance', Tags: [{ Key: 'meshd:cluster', Value: 'c1' }, { Key: 'meshd:key', Value: key }, { Key: 'meshd:price', Value: '0.05' }, { Key: 'Name', Value: `burst-${key}` }] },
      { ResourceType: 'volume', Tags: [{ Key: 'meshd:cluster', Value: 'c1' }] }
    ]
  }
}

t.test('zones, spot prices (paginated, newest first), launch templates', async (t) => {
  const fake = await startFakeEc2(t, { pageSize: 2 })
  const ec2 = client(fake)
  const zones = await ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }] }))
  t.same(zones.AvailabilityZones!.map((z) => [z.ZoneName, z.State, z.RegionName]), [['us-east-1a', 'available', 'us-east-1'], ['us-east-1b', 'available', 'us-east-1'], ['us-east-1c', 'available', 'us-east-1']])
  const west = await client(fake, 'us-west-2').send(new DescribeAvailabilityZonesCommand({}))
  t.same(west.AvailabilityZones!.map((z) => z.ZoneName), ['us-west-2a', 'us-west-2b', 'us-west-2c'], 'the region comes from the request signature')

  fake.setSpotPrice('c7a.large', 'us-east-1a', 0.031)
  fake.setSpotPrice('c7a.large', 'us-east-1b', 0.042)
  const rows = []
  let pages = 0
  for await (const page of paginateDescribeSpotPriceHistory({ client: ec2 }, { InstanceTypes: ['c7a.large', 'r7a.large'], ProductDescriptions: ['Linux/UNIX'], StartTime: new Date() })) {
    pages++
    rows.push(...page.SpotPriceHistory!)
  }
  t.equal(rows.length, 6, 'every (type, zone) of the region')
  t.ok(pages >= 3, `paginated by NextToken (${pages} pages of 2)`)
  const a = rows.find((r) => r.InstanceType === 'c7a.large' && r.AvailabilityZone === 'us-east-1a')!
  t.equal(a.SpotPrice, '0.031000')
  t.ok(a.Timestamp instanceof Date)
  t.equal(rows.find((r) => r.InstanceType === 'r7a.large')!.SpotPrice, '0.050000', 'the default price where none was set')

  const missing = await ec2Error(ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: ['meshd-test-0123456789ab'] })))
  t.equal(missing.name, 'InvalidLaunchTemplateName.NotFoundException')
  t.equal(missing.$metadata.httpStatusCode, 400)
  const id = await template(ec2)
  t.match(id, /^lt-[0-9a-f]{17}$/)
  t.equal(await template(ec2), id, 'the same ClientToken: the same template, not a second')
  const dup = await ec2Error(ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'meshd-test-0123456789ab', LaunchTemplateData: { ImageId: 'ami-1' } })))
  t.equal(dup.name, 'InvalidLaunchTemplateName.AlreadyExistsException')
  const bad = await ec2Error(ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'meshd-b64', LaunchTemplateData: { ImageId: 'ami-1', UserData: '#!/bin/sh not base64' } })))
  t.equal(bad.name, 'InvalidParameterValue', 'user data must be base64 (SDK v3 does not encode it)')
  const found = await ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: ['meshd-test-0123456789ab'] }))
  t.same(found.LaunchTemplates!.map((l) => [l.LaunchTemplateId, l.LaunchTemplateName, l.LatestVersionNumber]), [[id, 'meshd-test-0123456789ab', 1]])
  t.ok(found.LaunchTemplates![0]!.CreateTime instanceof Date)
  const del = await ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateName: 'meshd-test-0123456789ab' }))
  t.equal(del.LaunchTemplate!.LaunchTemplateId, id)
  t.equal((await ec2Error(ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateId: id })))).name, 'InvalidLaunchTemplateId.NotFound')
})

t.test('CreateFleet instant: cheapest override, tags, IMDS; refusals in Errors; ClientToken; DescribeInstances filters and pages; TerminateInstances', async (t) => {
  const fake = await startFakeEc2(t, { terminatedVisibleMs: 60_000 })
  const ec2 = client(fake)
  await template(ec2)
  fake.setSpotPrice('c7a.large', 'us-east-1a', 0.04)
  fake.setSpotPrice('r7a.large', 'us-east-1a', 0.03)

  const r = await ec2.send(new CreateFleetCommand(fleet('d1-0', [{ type: 'c7a.large', zone: 'us-east-1a' }, { type: 'r7a.large', zone: 'us-east-1a' }])))
  t.same(r.Errors, [], 'no refusal')
  t.equal(r.Instances!.length, 1)
  const got = r.Instances![0]!
  t.equal(got.InstanceType, 'r7a.large', 'price-capacity-optimized: the cheaper type')
  t.equal(got.Lifecycle, 'spot')
  t.equal(got.LaunchTemplateAndOverrides!.Overrides!.AvailabilityZone, 'us-east-1a')
  t.equal(got.LaunchTemplateAndOverrides!.Overrides!.SubnetId, 'subnet-us-east-1a')
  const id = got.InstanceIds![0]!
  t.match(id, /^i-[0-9a-f]{17}$/)

  const again = await ec2.send(new CreateFleetCommand(fleet('d1-0', [{ type: 'c7a.large', zone: 'us-east-1a' }, { type: 'r7a.large', zone: 'us-east-1a' }])))
  t.same(again.Instances![0]!.InstanceIds, [id], 'the same ClientToken: the same instance, no second launch')
  t.equal(fake.instances().length, 1)
  const mismatch = await ec2Error(ec2.send(new CreateFleetCommand(fleet('d1-0', [{ type: 'c7a.large', zone: 'us-east-1b' }]))))
  t.equal(mismatch.name, 'IdempotentParameterMismatch')

  const [inst] = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances!
  t.equal(inst!.InstanceLifecycle, 'spot')
  t.equal(inst!.Placement!.AvailabilityZone, 'us-east-1a')
  t.equal(inst!.ImageId, 'ami-0123456789abcdef0')
  t.same(Object.fromEntries(inst!.Tags!.map((x) => [x.Key, x.Value])), { 'meshd:cluster': 'c1', 'meshd:key': 'd1-0', 'meshd:price': '0.05', Name: 'burst-d1-0' })
  t.ok(inst!.LaunchTime instanceof Date)
  await waitFor(async () => (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!.State!.Name === 'running', { timeoutMs: 5000, what: 'running' })

  // Its IMDS: the tags (the template enables InstanceMetadataTags), the market, the user data.
  const md = new MetadataService({ endpoint: machinesImds(fake, id), retries: 0 })
  t.equal(await md.request('/latest/meta-data/tags/instance/meshd:key', {}), 'd1-0')
  t.equal(await md.request('/latest/meta-data/instance-life-cycle', {}), 'spot')
  t.equal(await md.request('/latest/user-data', {}), '#!/bin/sh\necho hi\n')
  t.equal(JSON.parse(await md.request('/latest/dynamic/instance-identity/document', {})).pendingTime, inst!.LaunchTime!.toISOString().replace(/\.\d{3}Z$/, 'Z'))

  // Capacity refused in 1a for spot: HTTP 200, no instance, every tried override in Errors.
  fake.refuse({ zone: 'us-east-1a', market: 'spot' })
  const refused = await ec2.send(new CreateFleetCommand(fleet('d1-1', [{ type: 'c7a.large', zone: 'us-east-1a' }, { type: 'r7a.large', zone: 'us-east-1a' }])))
  t.same(refused.Instances, [])
  t.same(refused.Errors!.map((e) => [e.ErrorCode, e.Lifecycle, e.LaunchTemplateAndOverrides!.Overrides!.InstanceType, e.LaunchTemplateAndOverrides!.Overrides!.AvailabilityZone]), [
    ['InsufficientInstanceCapacity', 'spot', 'r7a.large', 'us-east-1a'],
    ['InsufficientInstanceCapacity', 'spot', 'c7a.large', 'us-east-1a']
  ])
  t.match(refused.Errors![0]!.ErrorMessage, /no Spot capacity/)
  const od = await ec2.send(new CreateFleetCommand(fleet('d1-2', [{ type: 'c7a.large', zone: 'us-east-1a' }], 'on-demand')))
  t.equal(od.Instances![0]!.Lifecycle, 'on-demand', 'on-demand in the same zone is not refused')
  fake.refuse({ type: 'c7a.large', zone: 'us-east-1b', code: 'MaxSpotInstanceCountExceeded' })
  const partial = await ec2.send(new CreateFleetCommand(fleet('d1-3', [{ type: 'c7a.large', zone: 'us-east-1b' }, { type: 'm7a.large', zone: 'us-east-1b' }])))
  t.equal(partial.Instances![0]!.InstanceType, 'm7a.large', 'the next override takes over')
  t.same(partial.Errors!.map((e) => e.ErrorCode), ['MaxSpotInstanceCountExceeded'], 'and the refused one is still reported')
  fake.restore({ zone: 'us-east-1a' })
  const back = await ec2.send(new CreateFleetCommand(fleet('d1-4', [{ type: 'c7a.large', zone: 'us-east-1a' }])))
  t.equal(back.Instances!.length, 1, 'capacity restored')

  // Without ClientToken honoured (as some EC2-compatible endpoints): a second launch, found by tag.
  fake.ec2.honourClientToken = false
  await ec2.send(new CreateFleetCommand(fleet('d1-4', [{ type: 'c7a.large', zone: 'us-east-1a' }])))
  const byKey = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:meshd:key', Values: ['d1-4'] }] }))
  t.equal(byKey.Reservations!.flatMap((x) => x.Instances!).length, 2, 'the token ignored: two instances carry the key')

  const all: string[] = []
  let pages = 0
  for await (const page of paginateDescribeInstances({ client: ec2, pageSize: 2 }, { Filters: [{ Name: 'tag:meshd:cluster', Values: ['c1'] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }] })) {
    pages++
    all.push(...page.Reservations!.flatMap((x) => x.Instances!.map((i) => i.InstanceId!)))
  }
  t.equal(all.length, 5)
  t.equal(pages, 3, 'MaxResults 2: three pages')
  t.equal((await ec2Error(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0000000000000000f'] })))).name, 'InvalidInstanceID.NotFound')
  t.equal((await ec2Error(ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'bogus', Values: ['x'] }] })))).name, 'InvalidParameterValue')

  const term = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }))
  t.same(term.TerminatingInstances!.map((x) => [x.InstanceId, x.PreviousState!.Name, x.CurrentState!.Name, x.CurrentState!.Code]), [[id, 'running', 'shutting-down', 32]])
  await waitFor(() => fake.instance(id).state === 'terminated', { timeoutMs: 5000, what: 'terminated' })
  const live = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:meshd:cluster', Values: ['c1'] }, { Name: 'instance-state-name', Values: ['pending', 'running'] }] }))
  t.notOk(live.Reservations!.flatMap((x) => x.Instances!).some((i) => i.InstanceId === id), 'gone from the live list')
  const dead = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))
  t.equal(dead.Reservations![0]!.Instances![0]!.State!.Name, 'terminated', 'still listed as terminated')
  t.equal(fake.calls('CreateFleet'), 8)
})

function machinesImds (fake: FakeEc2, id: string): string {
  const url = fake.imdsUrl(id)
  if (url === undefined) throw new Error(`no IMDS for ${id}`)
  return url
}

t.test('errors as EC2 sends them: throttling (count and rate) retried by the SDK, DryRun, UnauthorizedOperation, unknown action', async (t) => {
  const fake = await startFakeEc2(t)
  const ec2 = client(fake)
  fake.throttleNext(2)
  const e = await ec2Error(ec2.send(new DescribeAvailabilityZonesCommand({})))
  t.equal(e.name, 'RequestLimitExceeded')
  t.equal(e.$metadata.httpStatusCode, 503)
  const retried = client(fake, 'us-east-1', 3)
  const r = await retried.send(new DescribeAvailabilityZonesCommand({}))
  t.equal(r.AvailabilityZones!.length, 3, 'the SDK retries throttling and gets through')
  t.equal(r.$metadata.attempts, 2)
  t.equal(fake.calls('DescribeAvailabilityZones'), 3)

  fake.throttleRate({ perSecond: 2, burst: 3, actions: ['DescribeInstances'] })
  const outcomes = await Promise.all(Array.from({ length: 6 }, async () => ec2.send(new DescribeInstancesCommand({})).then(() => 'ok', (err: Error) => err.name)))
  t.equal(outcomes.filter((o) => o === 'ok').length, 3, 'a burst of 3 passes')
  t.equal(outcomes.filter((o) => o === 'RequestLimitExceeded').length, 3, 'the rest is throttled')
  await ec2.send(new DescribeAvailabilityZonesCommand({}))
  t.pass('other actions are not limited')
  fake.throttleRate(null)

  const dry = await ec2Error(ec2.send(new DescribeInstancesCommand({ DryRun: true })))
  t.equal(dry.name, 'DryRunOperation')
  t.equal(dry.$metadata.httpStatusCode, 412)
  fake.deny('TerminateInstances')
  const denied = await ec2Error(ec2.send(new TerminateInstancesCommand({ InstanceIds: ['i-1'], DryRun: true })))
  t.equal(denied.name, 'UnauthorizedOperation')
  t.equal(denied.$metadata.httpStatusCode, 403)
  t.match(denied.message, /ec2:TerminateInstances/)
  const res = await fetch(fake.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=RunInstances&Version=2016-11-15' })
  t.equal(res.status, 400, 'an action the fake does not model')
  t.match(await res.text(), /<Code>InvalidAction<\/Code>/)
  const filter = await ec2Error(ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'region-name', Values: ['x'] }] })))
  t.equal(filter.name, 'InvalidParameterValue')
})

t.test('interruption: the notice on the IMDS, then the instance is terminated at its time; rebalance', async (t) => {
  const fake = await startFakeEc2(t)
  const ec2 = client(fake)
  await template(ec2)
  const id = (await ec2.send(new CreateFleetCommand(fleet('d2-0', [{ type: 'c7a.large', zone: 'us-east-1b' }])))).Instances![0]!.InstanceIds![0]!
  await waitFor(() => fake.instance(id).state === 'running', { timeoutMs: 5000, what: 'running' })
  const md = new MetadataService({ endpoint: machinesImds(fake, id), retries: 0 })
  await t.rejects(md.request('/latest/meta-data/spot/instance-action', {}), { message: /404/ })
  fake.rebalance(id)
  t.ok(JSON.parse(await md.request('/latest/meta-data/events/recommendations/rebalance', {})).noticeTime)
  const at = Date.now() + 1500
  fake.interrupt(id, at)
  const notice = JSON.parse(await md.request('/latest/meta-data/spot/instance-action', {})) as { action: string, time: string }
  t.equal(notice.action, 'terminate')
  t.equal(Date.parse(notice.time), Math.floor(at / 1000) * 1000)
  t.equal(fake.instance(id).state, 'running', 'still running until the notice is due')
  const { ms } = await waitFor(() => fake.instance(id).state === 'terminated', { timeoutMs: 10_000, intervalMs: 50, what: 'terminated by the interruption' })
  t.ok(Date.now() >= at, `terminated at the notice's time (after ${Math.round(ms)} ms)`)
  const [inst] = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances!
  t.equal(inst!.StateReason!.Code, 'Server.SpotInstanceTermination')
})

t.test('SSM and Secrets Manager through their SDK clients; files', async (t) => {
  const fake = await startFakeEc2(t)
  fake.putParameter('/meshd/swarm', 'the-key')
  fake.putSecret('meshd/swarm', 'the-secret')
  const ssm = new SSMClient({ region: 'us-east-1', endpoint: fake.url, maxAttempts: 1 })
  t.equal((await ssm.send(new GetParameterCommand({ Name: '/meshd/swarm', WithDecryption: true }))).Parameter!.Value, 'the-key')
  await t.rejects(ssm.send(new GetParameterCommand({ Name: '/nope', WithDecryption: true })), { name: 'ParameterNotFound' })
  const sm = new SecretsManagerClient({ region: 'us-east-1', endpoint: fake.url, maxAttempts: 1 })
  t.equal((await sm.send(new GetSecretValueCommand({ SecretId: 'meshd/swarm' }))).SecretString, 'the-secret')
  await t.rejects(sm.send(new GetSecretValueCommand({ SecretId: 'nope' })), { name: 'ResourceNotFoundException' })
  const dir = tempDir(t)
  writeFileSync(join(dir, 'b.tar.gz'), 'bundle bytes')
  const res = await fetch(fake.serveFile('b.tar.gz', join(dir, 'b.tar.gz')))
  t.equal(await res.text(), 'bundle bytes')
  t.equal((await fetch(`${fake.url}/files/other`)).status, 404)
})

t.test('held answers: the action is carried out, its answer waits until released', async (t) => {
  const fake = await startFakeEc2(t)
  const ec2 = client(fake)
  await template(ec2)
  const hold = fake.holdAnswers('CreateFleet')
  let answered = false
  const pending = ec2.send(new CreateFleetCommand(fleet('held-0', [{ type: 'c7a.large', zone: 'us-east-1a' }]))).then((r) => { answered = true; return r })
  await waitFor(() => hold.held() === 1, { timeoutMs: 5_000, what: 'the CreateFleet answer held' })
  t.equal(fake.instances().length, 1, 'the instance exists while its answer is held')
  t.notOk(answered, 'the caller has no answer yet')
  hold.release()
  const r = await pending
  t.equal(r.Instances?.[0]?.InstanceIds?.[0], fake.instances()[0]!.id, 'released: the caller learns the instance')
  await ec2.send(new CreateFleetCommand(fleet('held-1', [{ type: 'c7a.large', zone: 'us-east-1a' }])))
  t.equal(fake.instances().length, 2, 'after release, answers go out at once again')
})
