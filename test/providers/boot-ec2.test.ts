/**
 * An EC2 burst node boots for real: the fake EC2 (machines: 'netns')
 * launches an instance through the SDK's CreateFleet; its user data, run by
 * `sh` in the instance's own network and mount namespaces, downloads a real
 * bundle (this checkout's, test/helpers/test-bundle.ts) from the fake's file server,
 * checks its sha256, installs it under /opt/meshd and runs `meshd boot-ec2`,
 * which reads the instance's IMDS, fetches the swarm key from (fake) SSM,
 * writes /etc/meshd and starts the node. The node answers a chat completion
 * (the official openai client) on its private address; its status names the
 * instance and zone; its config polls EC2 notices; booting again starts no
 * second node; TerminateInstances leaves no process in the namespace.
 */
import t from 'tap'
import OpenAI from 'openai'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { EC2Client, CreateFleetCommand, CreateLaunchTemplateCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2'
import { startFakeEc2, netnsMachinesAvailable, type FakeEc2 } from '../helpers/fake-ec2/index.ts'
import { userDataScript } from '../../providers/aws/user-data.ts'
import { testBundle } from '../helpers/test-bundle.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { generateSwarmKey } from '../../mesh/swarm-key.ts'
import { BOOT_SPEC_VERSION, type BootSpec } from '../../providers/aws/boot-spec.ts'
import { offlineAws } from '../helpers/aws-env.ts'

offlineAws()

const run = promisify(execFile)
const skip = netnsMachinesAvailable()

/** A process that has not exited (a zombie waiting for its reaper has). */
function running (pid: number): boolean {
  try { return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) } catch { return false }
}

/** Runs the installed meshd inside the instance. */
async function inInstance (fake: FakeEc2, id: string, args: string[]): Promise<{ stdout: string, stderr: string }> {
  return run(fake.inside(id)[0]!, [...fake.inside(id).slice(1), '/opt/meshd/current/bin/meshd', ...args], { timeout: 30_000 })
}

t.test('CreateFleet → user data → bundle → meshd boot-ec2 → a node that serves; terminate leaves nothing', { skip }, async (t) => {
  const { path: bundle, sha256 } = await testBundle()

  const fake = await startFakeEc2(t, { machines: 'netns', terminateGraceMs: 15_000 })
  const swarmKey = generateSwarmKey()
  fake.putParameter('/meshd/prod/swarm-key', swarmKey)
  const spec: BootSpec = {
    v: BOOT_SPEC_VERSION,
    provider: 'aws-spot',
    cluster: 'ec2test',
    config: {
      replica: { models: ['llama3'], slots: 2, command: 'sim', sim: { ttft_ms: 10, tokens_per_second: 200, max_tokens: 8 } },
      burst: { ttl: '1h', idle_timeout: '30m' },
      log: { level: 'info' }
    },
    swarm_key: { from: 'ssm', parameter: '/meshd/prod/swarm-key', region: 'us-east-1' },
    paths: { config: '/etc/meshd/meshd.json', swarm_key: '/etc/meshd/swarm.key', state_dir: '/var/lib/meshd' },
    install_dir: '/opt/meshd'
  }
  const userData = userDataScript({ bundle: { url: fake.serveFile('meshd.tar.gz', bundle), sha256 }, spec })

  const ec2 = new EC2Client({ region: 'us-east-1', endpoint: fake.url, maxAttempts: 1 })
  await ec2.send(new CreateLaunchTemplateCommand({
    LaunchTemplateName: 'meshd-ec2test-aws-spot-0123456789ab',
    LaunchTemplateData: { ImageId: 'ami-0123456789abcdef0', UserData: Buffer.from(userData).toString('base64'), MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', InstanceMetadataTags: 'enabled' } }
  }))
  const t0 = performance.now()
  const launched = await ec2.send(new CreateFleetCommand({
    Type: 'instant',
    ClientToken: 'd7-0',
    TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: 'spot' },
    SpotOptions: { AllocationStrategy: 'price-capacity-optimized' },
    LaunchTemplateConfigs: [{ LaunchTemplateSpecification: { LaunchTemplateName: 'meshd-ec2test-aws-spot-0123456789ab', Version: '$Latest' }, Overrides: [{ InstanceType: 'c7a.large', AvailabilityZone: 'us-east-1b' }] }],
    TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'meshd:cluster', Value: 'ec2test' }, { Key: 'meshd:key', Value: 'd7-0' }, { Key: 'meshd:price', Value: '0.0312' }, { Key: 'meshd:provider', Value: 'aws-spot' }] }]
  }))
  const id = launched.Instances![0]!.InstanceIds![0]!
  const inst = fake.instance(id)

  let timer: NodeJS.Timeout | undefined
  const exit = await Promise.race([fake.userDataExit(id), new Promise<'timeout'>((resolve) => { timer = setTimeout(() => { resolve('timeout') }, 180_000) })])
  clearTimeout(timer)
  t.equal(exit, 0, `the user data ran to the end (console output:\n${fake.consoleOutput(id)})`)
  if (exit !== 0) return
  t.pass(`CreateFleet to a booted node in ${Math.round(performance.now() - t0)} ms`)
  const out = fake.consoleOutput(id)
  t.match(out, new RegExp(`boot-ec2: instance ${id} \\(c7a.large, spot\\) in us-east-1b, key d7-0`))
  t.match(out, /swarm key from SSM \/meshd\/prod\/swarm-key/)
  t.notOk(out.includes(swarmKey.split('\n')[2]!), 'the swarm key is not in the console output')

  // The node, on its private address inside its namespace (reached over the bridge).
  const { value: self } = await waitFor(async () => {
    const s = JSON.parse((await inInstance(fake, id, ['status', '--json', '--config', '/etc/meshd/meshd.json'])).stdout) as { self: string, members: Array<{ id: string, name: string, zone?: string, spot: boolean, cost_per_hour: number, burst?: boolean, instance?: { provider: string, id: string }, replica?: { ready: boolean } }> }
    const me = s.members.find((m) => m.id === s.self)
    return me?.replica?.ready === true ? me : null
  }, { timeoutMs: 60_000, intervalMs: 500, what: 'the node to report its replica ready' })
  t.match(self, { name: 'burst-d7-0', zone: 'us-east-1b', spot: true, cost_per_hour: 0.0312, instance: { provider: 'aws-spot', id } }, 'status: this instance, its zone, spot, the tagged price')
  const check = JSON.parse((await inInstance(fake, id, ['config', 'check', '--json', '--config', '/etc/meshd/meshd.json'])).stdout) as { config: { instance: { notices: string, key: string }, mesh: { announce: string[] }, http: { listen: string } } }
  t.equal(check.config.instance.notices, 'ec2', 'the node polls EC2 notices')
  t.equal(check.config.instance.key, 'd7-0')
  t.same(check.config.mesh.announce, [`/ip4/${inst.privateIp}/tcp/4001`], 'announced on its private address')
  t.equal(check.config.http.listen, `${inst.privateIp}:8080`)
  const modes = (await run(fake.inside(id)[0]!, [...fake.inside(id).slice(1), 'stat', '-c', '%a %n', '/etc/meshd/meshd.json', '/etc/meshd/swarm.key', '/etc/meshd/boot.json'])).stdout
  t.same(modes.trim().split('\n').map((l) => l.split(' ')[0]), ['600', '600', '600'], 'config, swarm key and boot spec are 0600')

  const client = new OpenAI({ baseURL: `http://${inst.privateIp}:8080/v1`, apiKey: 'x', maxRetries: 0, timeout: 30_000 })
  const { data, response } = await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
  t.ok(data.choices[0]?.message.content, 'the burst node answered a chat completion on its private address')
  t.ok(response.headers.get('x-meshd-served-by'))

  // Booting again finds the node running and starts no second one.
  const nodes = (): number => fake.pids(id).filter((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes('/etc/meshd/meshd.json') && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('lib/meshd.js') } catch { return false } }).length
  t.equal(nodes(), 1, 'one node runs')
  const again = await run(fake.inside(id)[0]!, [...fake.inside(id).slice(1), 'env', `AWS_EC2_METADATA_SERVICE_ENDPOINT=${fake.imdsUrl(id)!}`, '/opt/meshd/current/bin/meshd', 'boot-ec2', '--json'], { timeout: 60_000 })
  t.match(JSON.parse(again.stdout), { outcome: 'running', instance: id })
  t.equal(nodes(), 1, 'still one node after a second boot')

  const before = fake.pids(id)
  t.ok(before.length > 0, `processes run in the instance (${before.length})`)
  const term = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }))
  t.equal(term.TerminatingInstances![0]!.CurrentState!.Name, 'shutting-down')
  const { ms } = await waitFor(() => fake.instance(id).state === 'terminated', { timeoutMs: 40_000, intervalMs: 100, what: 'the instance to be terminated' })
  t.same(before.filter(running), [], `none of them is left in the instance's namespace (${Math.round(ms)} ms after TerminateInstances)`)
})
