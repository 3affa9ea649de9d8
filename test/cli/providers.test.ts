/**
 * `meshd providers check` and `meshd providers user-data`, the real CLI
 * against a loopback EC2 endpoint that answers DryRun the way EC2 does:
 * DryRunOperation (412) for an allowed action, UnauthorizedOperation (403)
 * for a missing one.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { meshd } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { AWS_TEST_ENV } from '../helpers/aws-env.ts'
import { errorXml } from '../helpers/fake-ec2/query.ts'

const ENV = { ...AWS_TEST_ENV, AWS_PROFILE: undefined, MESHD_CONFIG: undefined }

/** Allowed: everything but `denied`; records each action with its DryRun flag. */
async function endpoint (t: { teardown: (fn: () => Promise<void>) => void }, denied: Set<string>): Promise<{ url: string, seen: Array<{ action: string, dryRun: boolean }> }> {
  const seen: Array<{ action: string, dryRun: boolean }> = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      const q = new URLSearchParams(body)
      const action = q.get('Action') ?? '?'
      seen.push({ action, dryRun: q.get('DryRun') === 'true' })
      const [status, xml] = denied.has(action)
        ? [403, errorXml('UnauthorizedOperation', `You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/meshd is not authorized to perform: ec2:${action}`)]
        : [412, errorXml('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.')]
      res.writeHead(status, { 'content-type': 'text/xml' })
      res.end(xml)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

function config (dir: string, endpointUrl: string): string {
  const key = join(dir, 'swarm.key')
  writeFileSync(key, '/key/swarm/psk/1.0.0/\n/base16/\n' + 'cd'.repeat(32) + '\n', { mode: 0o600 })
  const file = join(dir, 'meshd.yaml')
  writeFileSync(file, `cluster: lab
state_dir: ${join(dir, 'state')}
swarm_key_file: ${key}
mesh:
  bootstrap: [/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWA]
providers:
  - name: pool
    kind: ssh
    hosts: [{ ip: 10.0.0.5 }]
    replica: { models: [m] }
  - name: aws-spot
    kind: aws
    regions: [us-east-1, eu-west-1]
    instance_types: [c7a.4xlarge]
    image_id: ami-0123456789abcdef0
    zones: { us-east-1: [us-east-1a] }
    endpoint: ${endpointUrl}
    bundle_url: https://example.invalid/meshd.tar.gz
    bundle_sha256: ${'e'.repeat(64)}
    swarm_key: { from: ssm, parameter: /meshd/lab/swarm }
    replica: { models: [m] }
`)
  return file
}

t.test('providers check: each action per region with DryRun; a missing permission is named, exit 1', async (t) => {
  const dir = tempDir(t, 'meshd-providers-')
  const ep = await endpoint(t, new Set(['CreateFleet']))
  const file = config(dir, ep.url)
  const r = await meshd(['providers', 'check', '--config', file, '--json'], { env: ENV })
  t.equal(r.code, 1, `exit 1 (${r.stderr})`)
  const doc = JSON.parse(r.stdout) as { providers: Array<{ provider: string, rows: Array<{ region: string, action: string, result: string, detail: string | null }> }> }
  t.equal(doc.providers.length, 1, 'the aws provider only')
  const rows = doc.providers[0]!.rows
  const actions = ['ec2:DescribeInstances', 'ec2:DescribeAvailabilityZones', 'ec2:DescribeSpotPriceHistory', 'ec2:DescribeLaunchTemplates', 'ec2:CreateFleet', 'ec2:TerminateInstances', 'ec2:CreateLaunchTemplate', 'ec2:DeleteLaunchTemplate']
  for (const region of ['us-east-1', 'eu-west-1']) {
    t.same(rows.filter((x) => x.region === region).map((x) => x.action).sort(), [...actions].sort(), `${region}: every action`)
    const fleet = rows.find((x) => x.region === region && x.action === 'ec2:CreateFleet')!
    t.equal(fleet.result, 'missing')
    t.match(fleet.detail, /UnauthorizedOperation/)
    t.ok(rows.filter((x) => x.region === region && x.action !== 'ec2:CreateFleet').every((x) => x.result === 'allowed'), `${region}: the others allowed`)
  }
  t.ok(ep.seen.length === 16 && ep.seen.every((s) => s.dryRun), 'every call had DryRun=true: nothing was run')

  const human = await meshd(['providers', 'check', 'aws-spot', '--config', file], { env: ENV })
  t.equal(human.code, 1)
  t.match(human.stdout, /ec2:CreateFleet\s+MISSING/)
  t.match(human.stdout, /missing permissions: ec2:CreateFleet/)

  const ssh = await meshd(['providers', 'check', 'pool', '--config', file], { env: ENV })
  t.equal(ssh.code, 2)
  t.match(ssh.stderr, /meshd pool check pool/)
})

t.test('providers check: an endpoint that does not answer is unreachable, not allowed', async (t) => {
  const dir = tempDir(t, 'meshd-providers-')
  // A port nobody listens on: bind one, note it, close it.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
  const r = await meshd(['providers', 'check', '--config', config(dir, `http://127.0.0.1:${port}`), '--json'], { env: ENV })
  t.equal(r.code, 1)
  const rows = (JSON.parse(r.stdout) as { providers: Array<{ rows: Array<{ result: string }> }> }).providers[0]!.rows
  t.ok(rows.length > 0 && rows.every((x) => x.result === 'unreachable'), `all unreachable: ${[...new Set(rows.map((x) => x.result))].join(',')}`)
})

t.test('providers user-data prints the boot script for a user launch template', async (t) => {
  const dir = tempDir(t, 'meshd-providers-')
  const r = await meshd(['providers', 'user-data', 'aws-spot', '--config', config(dir, 'http://127.0.0.1:9'), '--peer', '/ip4/10.0.0.7/tcp/4001/p2p/12D3KooWZ'], { env: ENV })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^#!\/bin\/sh\n/)
  t.match(r.stdout, /boot-ec2 --spec '\/etc\/meshd\/boot.json'/)
  t.match(r.stdout, /"swarm_key":\{"from":"ssm","parameter":"\/meshd\/lab\/swarm","region":"us-east-1"\}/)
  t.match(r.stdout, /12D3KooWZ/)
  t.notOk(r.stdout.includes('cd'.repeat(32)), 'no swarm key in it with from: ssm')
})
