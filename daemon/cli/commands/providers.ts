/**
 * `meshd providers check [NAME]` and `meshd providers user-data NAME`: the
 * cloud providers of the config, from this machine, without a running
 * daemon. check asks EC2, per region, whether each action the aws provider
 * uses is allowed (DryRun: nothing is created or changed). user-data prints
 * the script a user's own launch template needs to boot meshd.
 */
import { readFileSync } from 'node:fs'
import { parseCommandArgs, UsageError, CommandFailed } from '../common/command.ts'
import { printJson } from '../common/daemon-client.ts'
import { renderTable } from '../common/table.ts'
import { loadConfig, resolveConfigPath } from '../../config/load.ts'
import { ConfigError } from '../../config/errors.ts'
import type { Config, ProviderConfig } from '../../config/schema.ts'
import { burstDefaults, imageIds } from '../../leader/providers.ts'

export const help = `usage: meshd providers check [NAME] [--json]
       meshd providers user-data NAME [--peer MULTIADDR]...

check      for each aws provider (or provider NAME), in each of its regions,
           asks EC2 with DryRun whether the credentials meshd would use (the
           standard AWS chain: env, profile, instance role) may call each
           action the provider uses: DescribeInstances, DescribeAvailabilityZones,
           DescribeSpotPriceHistory, DescribeLaunchTemplates, CreateFleet,
           TerminateInstances, and CreateLaunchTemplate / DeleteLaunchTemplate
           when meshd makes the launch template. Prints allowed, MISSING
           (the action named) or unreachable. Nothing is launched or changed.
           Exit 1 when anything is missing or unreachable.
           For an ssh pool, \`meshd pool check\` is the command.
user-data  prints the user data script for provider NAME's own launch
           template (launch_template in the config): it installs bundle_url,
           writes the boot spec and runs \`meshd boot-ec2\`. Bootstrap peers:
           --peer (repeatable), else the config's mesh.announce and
           mesh.bootstrap. With swarm_key.from: user_data the script holds
           the swarm key (see README, "The swarm key").`

type AwsConfig = Extract<ProviderConfig, { kind: 'aws' }>

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('providers', argv, { peer: { type: 'string', multiple: true } }, true)
  const [sub, ...args] = positionals
  const file = resolveConfigPath(values.config)
  const config = loadConfig(file)
  if (sub === 'check') {
    if (args.length > 1) throw new UsageError('providers check: at most one provider name')
    return await check(file, config, args[0], values.json === true)
  }
  if (sub === 'user-data') {
    if (args.length !== 1) throw new UsageError('providers user-data: expected one provider name (`meshd providers user-data NAME`)')
    return await userData(file, config, args[0]!, values.peer ?? [])
  }
  throw new UsageError(sub === undefined ? 'providers: expected a subcommand: check or user-data (see `meshd providers --help`)' : `providers: unknown subcommand "${sub}"; expected check or user-data`)
}

function awsProviders (file: string, config: Config, name: string | undefined): AwsConfig[] {
  if (name === undefined) {
    const all = config.providers.filter((p): p is AwsConfig => p.kind === 'aws')
    if (all.length === 0) {
      const ssh = config.providers.some((p) => p.kind === 'ssh')
      throw new ConfigError(file, 'providers', `a provider of kind: aws (the config has none${ssh ? '; for an ssh pool, `meshd pool check` is the command' : ''})`)
    }
    return all
  }
  const p = config.providers.find((x) => x.name === name)
  if (p === undefined) throw new ConfigError(file, 'providers', `a provider named ${name} (there are: ${config.providers.map((x) => x.name).join(', ') || 'none'})`)
  if (p.kind === 'ssh') throw new UsageError(`providers check: ${name} is an ssh pool: \`meshd pool check ${name}\` is the command for it`)
  if (p.kind !== 'aws') throw new UsageError(`providers check: ${name} is of kind ${p.kind}: there is nothing to check remotely (only aws providers are checked here)`)
  return [p]
}

async function check (file: string, config: Config, name: string | undefined, json: boolean): Promise<number> {
  const list = awsProviders(file, config, name)
  // The SDK is loaded only for this command (and by a leader that launches on EC2).
  const aws = await import('../../../providers/aws/index.ts')
  const out = await Promise.all(list.map(async (p) => {
    const clients = new aws.Ec2Clients({ endpoint: p.endpoint, retry: { throttleAttempts: 2, transientAttempts: 1 } })
    try {
      const rows = await aws.checkPermissions({
        name: p.name,
        cluster: config.cluster,
        regions: p.regions,
        instanceTypes: p.instance_types,
        spot: p.spot,
        imageIds: imageIds(p),
        ...(p.launch_template === undefined ? {} : { launchTemplate: p.launch_template }),
        zones: p.zones,
        clients
      })
      return { provider: p.name, rows }
    } finally {
      clients.destroy()
    }
  }))
  const bad = out.some((p) => p.rows.some((r) => r.result !== 'allowed'))
  if (json) { printJson({ providers: out }); return bad ? 1 : 0 }
  for (const p of out) {
    process.stdout.write(`provider ${p.provider}\n`)
    process.stdout.write(renderTable(['REGION', 'ACTION', 'RESULT', 'DETAIL'], p.rows.map((r) => [r.region, r.action, r.result === 'missing' ? 'MISSING' : r.result, r.detail === null ? '' : r.detail.slice(0, 160)])) + '\n')
    const missing = [...new Set(p.rows.filter((r) => r.result === 'missing').map((r) => r.action))]
    if (missing.length > 0) process.stdout.write(`  missing permissions: ${missing.join(', ')} (README, "IAM": the policy to attach)\n`)
  }
  return bad ? 1 : 0
}

async function userData (file: string, config: Config, name: string, peers: string[]): Promise<number> {
  const [p] = awsProviders(file, config, name)
  const aws = await import('../../../providers/aws/index.ts')
  if (p!.swarm_key.from === 'user_data') process.stderr.write('meshd: warning: swarm_key.from is user_data: this script holds the swarm key; keep it as secret as the key itself\n')
  const region = p!.regions[0]!
  const req = {
    key: 'user-data',
    cluster: config.cluster,
    offering: { provider: p!.name, kind: 'aws' as const, region, spot: p!.spot, pricePerHour: 0, available: true },
    replica: { models: p!.replica.models, slots: p!.replica.slots, command: p!.replica.command, ...(p!.replica.url === undefined ? {} : { url: p!.replica.url }), sim: p!.replica.sim },
    node: { name: 'user-data', config: p!.config },
    bootstrap: { peers: peers.length > 0 ? peers : [...config.mesh.announce, ...config.mesh.bootstrap] }
  }
  let keyText: string
  const readKey = (): string => {
    try { keyText ??= readFileSync(config.swarm_key_file, 'utf8') } catch (e) { throw new CommandFailed(`providers user-data: swarm key ${config.swarm_key_file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`) }
    return keyText
  }
  const spec = aws.bootSpec({
    provider: p!.name,
    cluster: config.cluster,
    installDir: p!.install_dir,
    config: aws.burstNodeConfig({ provider: p!.name, req, defaults: burstDefaults(config) }),
    swarmKey: aws.swarmKeySource(p!.swarm_key, region, readKey)
  })
  process.stdout.write(aws.userDataScript({ spec, bundle: p!.bundle_url === undefined || p!.bundle_sha256 === undefined ? null : { url: p!.bundle_url, sha256: p!.bundle_sha256 } }))
  return 0
}
