/**
 * The fake instance-metadata service (test/helpers/imds.ts) speaks IMDSv2 as
 * the real SDK client expects: token first, 401 without one, 404 for a notice
 * not yet given. The aws tests build on it, so it is checked on its own.
 */
import t from 'tap'
import { MetadataService } from '@aws-sdk/ec2-metadata-service'
import { startImds } from '../helpers/imds.ts'

t.test('the SDK reads metadata through a token; no token is 401; notices appear when announced', async (t) => {
  const imds = await startImds({ instanceId: 'i-0abc', instanceType: 'c7a.large', region: 'us-east-1', zone: 'us-east-1b', tags: { 'meshd:key': 'd1-0' } })
  t.teardown(() => imds.close())
  const md = new MetadataService({ endpoint: imds.url, retries: 0 })
  t.equal(await md.request('/latest/meta-data/instance-id', {}), 'i-0abc')
  t.equal(await md.request('/latest/meta-data/placement/availability-zone', {}), 'us-east-1b')
  t.equal(await md.request('/latest/meta-data/tags/instance/meshd:key', {}), 'd1-0')

  const bare = await fetch(`${imds.url}/latest/meta-data/instance-id`)
  t.equal(bare.status, 401, 'IMDSv2 only: a GET without a token is refused')
  const badTtl = await fetch(`${imds.url}/latest/api/token`, { method: 'PUT' })
  t.equal(badTtl.status, 400, 'a token request without a TTL is refused')

  await t.rejects(md.request('/latest/meta-data/spot/instance-action', {}), { message: /status code 404/ }, 'no notice yet: 404')
  const at = Date.parse('2026-11-26T21:00:00Z')
  imds.announceInterruption(at)
  t.same(JSON.parse(await md.request('/latest/meta-data/spot/instance-action', {})), { action: 'terminate', time: '2026-11-26T21:00:00Z' })
  await t.rejects(md.request('/latest/meta-data/events/recommendations/rebalance', {}), { message: /status code 404/ })
  imds.announceRebalance(at - 60_000)
  t.same(JSON.parse(await md.request('/latest/meta-data/events/recommendations/rebalance', {})), { noticeTime: '2026-11-26T20:59:00Z' })
})

t.test('an expired token is refused', async (t) => {
  let clock = 1_000_000
  const imds = await startImds({ instanceId: 'i-1', instanceType: 't3.micro', region: 'eu-west-1', zone: 'eu-west-1a' }, { now: () => clock })
  t.teardown(() => imds.close())
  const token = await (await fetch(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text()
  const get = async (): Promise<number> => (await fetch(`${imds.url}/latest/meta-data/instance-id`, { headers: { 'x-aws-ec2-metadata-token': token } })).status
  t.equal(await get(), 200)
  clock += 61_000
  t.equal(await get(), 401)
})
