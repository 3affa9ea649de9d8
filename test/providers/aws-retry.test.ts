/**
 * The EC2 clients' retry strategy through the real SDK over HTTP: a loopback
 * server answers EC2's XML errors, and we count what arrives. A capacity
 * refusal (HTTP 500) costs one request; throttling is retried with the same
 * request body (the same ClientToken); a call that hangs ends at its deadline.
 * The decision itself is a table test of retryDelay.
 */
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CreateFleetCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2'
import { Ec2Clients, deadline, retryDelay, DEFAULT_RETRY, typedError } from '../../providers/aws/index.ts'
import { isInsufficientCapacityError, isProviderUnavailableError } from '../../providers/types.ts'
import { offlineAws } from '../helpers/aws-env.ts'
import { errorXml as ec2ErrorXml } from '../helpers/fake-ec2/query.ts'

offlineAws()

/** EC2's error document for `code` (the fake EC2's own builder). */
function errorXml (code: string): string {
  return ec2ErrorXml(code, `${code} (test)`)
}

const FLEET_OK = '<?xml version="1.0" encoding="UTF-8"?>\n<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-2</requestId><fleetId>fleet-1</fleetId><errorSet/><fleetInstanceSet><item><instanceIds><item>i-0123456789abcdef0</item></instanceIds><instanceType>c7a.4xlarge</instanceType><lifecycle>spot</lifecycle></item></fleetInstanceSet></CreateFleetResponse>'

type Answer = { status: number, body: string } | 'hang'

/** A loopback endpoint answering from a script, recording each request body. */
async function endpoint (t: { teardown: (fn: () => Promise<void>) => void }, answers: Answer[]): Promise<{ url: string, bodies: string[] }> {
  const bodies: string[] = []
  const hung: ServerResponse[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      bodies.push(body)
      const a = answers.shift() ?? { status: 500, body: errorXml('InternalError') }
      if (a === 'hang') { hung.push(res); return }
      res.writeHead(a.status, { 'content-type': 'text/xml' })
      res.end(a.body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const r of hung) r.destroy()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies }
}


const fleet = (): CreateFleetCommand => new CreateFleetCommand({
  Type: 'instant',
  ClientToken: 'd1-0-abcdef0123',
  TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: 'spot' },
  LaunchTemplateConfigs: [{ LaunchTemplateSpecification: { LaunchTemplateName: 'meshd-x', Version: '$Latest' }, Overrides: [{ InstanceType: 'c7a.4xlarge', AvailabilityZone: 'us-east-1a' }] }]
})

t.test('InsufficientInstanceCapacity (HTTP 500) is not retried: one refusal, one request', async (t) => {
  const ep = await endpoint(t, [{ status: 500, body: errorXml('InsufficientInstanceCapacity') }, { status: 200, body: FLEET_OK }])
  const clients = new Ec2Clients({ endpoint: ep.url, retry: { transientBaseMs: 1, throttleBaseMs: 1 } })
  t.teardown(() => { clients.destroy() })
  const e = await clients.ec2('us-east-1').send(fleet(), deadline(5_000)).then(() => null, (x: unknown) => x)
  t.equal(ep.bodies.length, 1, 'one request')
  t.ok(isInsufficientCapacityError(typedError('p', 'CreateFleet', e)), `typed as InsufficientCapacityError (${String(e)})`)
})

t.test('RequestLimitExceeded is retried with backoff, resending the same ClientToken', async (t) => {
  const ep = await endpoint(t, [{ status: 503, body: errorXml('RequestLimitExceeded') }, { status: 503, body: errorXml('RequestLimitExceeded') }, { status: 200, body: FLEET_OK }])
  const retries: Array<[string, number, number]> = []
  const clients = new Ec2Clients({ endpoint: ep.url, retry: { throttleBaseMs: 20 }, onRetry: (_r, code, attempt, ms) => { retries.push([code, attempt, ms]) } })
  t.teardown(() => { clients.destroy() })
  const out = await clients.ec2('us-east-1').send(fleet(), deadline(5_000))
  t.equal(out.Instances?.[0]?.InstanceIds?.[0], 'i-0123456789abcdef0', 'the third attempt answered')
  t.equal(ep.bodies.length, 3)
  const tokens = ep.bodies.map((b) => new URLSearchParams(b).get('ClientToken'))
  t.same(tokens, ['d1-0-abcdef0123', 'd1-0-abcdef0123', 'd1-0-abcdef0123'], 'the same token each time')
  t.same(retries.map(([code, attempt]) => [code, attempt]), [['RequestLimitExceeded', 1], ['RequestLimitExceeded', 2]])
  t.ok(retries[0]![2] >= 10 && retries[0]![2] <= 20 && retries[1]![2] >= 20 && retries[1]![2] <= 40, `exponential with jitter: ${retries.map((r) => r[2]).join(', ')} ms`)
})

t.test('throttled past the attempts: the error comes back as ProviderUnavailableError', async (t) => {
  const ep = await endpoint(t, Array.from({ length: 10 }, () => ({ status: 503, body: errorXml('RequestLimitExceeded') })))
  const clients = new Ec2Clients({ endpoint: ep.url, retry: { throttleBaseMs: 1, throttleAttempts: 3 } })
  t.teardown(() => { clients.destroy() })
  const e = await clients.ec2('us-east-1').send(fleet(), deadline(5_000)).then(() => null, (x: unknown) => x)
  t.equal(ep.bodies.length, 3, 'three attempts in all')
  t.ok(isProviderUnavailableError(typedError('p', 'CreateFleet', e)), String(e))
})

t.test('a call that hangs ends at its deadline', async (t) => {
  const ep = await endpoint(t, ['hang', 'hang', 'hang'])
  const clients = new Ec2Clients({ endpoint: ep.url })
  t.teardown(() => { clients.destroy() })
  const t0 = performance.now()
  const e = await clients.ec2('us-east-1').send(new DescribeInstancesCommand({}), deadline(300)).then(() => null, (x: unknown) => x)
  const ms = performance.now() - t0
  t.ok(e !== null, 'rejected')
  t.ok(ms < 3_000, `within the deadline (${Math.round(ms)} ms)`)
  t.ok(isProviderUnavailableError(typedError('p', 'DescribeInstances', e)), `unavailable: ${String(e)}`)
})

t.test('retryDelay: the decision table', async (t) => {
  const P = DEFAULT_RETRY
  const rows: Array<[string, 'THROTTLING' | 'TRANSIENT' | 'SERVER_ERROR' | 'CLIENT_ERROR', number, number | null]> = [
    ['InsufficientInstanceCapacity', 'SERVER_ERROR', 1, null],
    ['SpotMaxPriceTooLow', 'CLIENT_ERROR', 1, null],
    ['VcpuLimitExceeded', 'CLIENT_ERROR', 1, null],
    ['UnauthorizedOperation', 'CLIENT_ERROR', 1, null],
    ['RequestLimitExceeded', 'THROTTLING', 1, 1000],
    ['RequestLimitExceeded', 'THROTTLING', 2, 2000],
    ['RequestLimitExceeded', 'THROTTLING', 4, 8000],
    ['RequestLimitExceeded', 'THROTTLING', 5, null],
    ['InternalError', 'SERVER_ERROR', 1, 100],
    ['ECONNRESET', 'TRANSIENT', 2, 200],
    ['ECONNRESET', 'TRANSIENT', 3, null]
  ]
  for (const [code, kind, attempt, want] of rows) t.equal(retryDelay(code, kind, attempt, P, 0.999999), want, `${code} ${kind} after attempt ${attempt}`)
  t.equal(retryDelay('RequestLimitExceeded', 'THROTTLING', 1, P, 0), 500, 'jitter keeps half the backoff as a floor')
  t.equal(retryDelay('RequestLimitExceeded', 'THROTTLING', 4, { ...P, throttleAttempts: 10, throttleMaxMs: 3000 }, 0.999999), 3000, 'capped')
})
