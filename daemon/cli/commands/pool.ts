/**
 * `meshd pool check [NAME]` and `meshd pool trust NAME HOST`: the SSH pools
 * of the config, from this machine, without a running daemon (the config
 * file is all it needs). Every host is asked in parallel, each under its own
 * deadline, so one hung host never holds the table.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { parseCommandArgs, UsageError, CommandFailed } from '../common/command.ts'
import { printJson } from '../common/daemon-client.ts'
import { renderTable } from '../common/table.ts'
import { loadConfig, resolveConfigPath } from '../../config/load.ts'
import { ConfigError } from '../../config/errors.ts'
import type { Config, ProviderConfig } from '../../config/schema.ts'
import { buildSsh, expandHome } from '../../leader/providers.ts'
import { checkHostKey, blobKeyType, fetchHostKey, fingerprint, knownHostsLine, parseKnownHosts, targetName, type HostCheck } from '../../../providers/ssh/index.ts'

export const help = `usage: meshd pool check [NAME] [--json]
       meshd pool trust NAME HOST

The SSH pools (providers of kind: ssh) of the config, asked from this machine.

check   one row per host of each pool (or of pool NAME): reachable, host key
        (known / unknown / CHANGED), OS and architecture, CPUs, memory, GPUs,
        free disk where install_dir is, the meshd installed there and its
        version, the burst node running there. Hosts are asked in parallel,
        each within 5 s per step. Exit 1 when a host is unreachable or refused.
trust   connects to HOST (its ip, or ip:port, as in the pool) without logging
        in, shows its host key's fingerprint (SHA256:..., compare it with
        \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on the host) and
        records the key in the pool's known_hosts. A host already known with
        another key is refused: remove its old line first.`

type SshConfig = Extract<ProviderConfig, { kind: 'ssh' }>

/** A host that does not answer is reported within these, not waited for. */
const CHECK_TIMEOUTS = { connectTimeoutMs: 5_000, commandTimeoutMs: 5_000 }

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('pool', argv, {}, true)
  const [sub, ...args] = positionals
  const file = resolveConfigPath(values.config)
  const config = loadConfig(file)
  if (sub === 'check') {
    if (args.length > 1) throw new UsageError('pool check: at most one pool name')
    return await check(file, config, pools(file, config, args[0]), values.json === true)
  }
  if (sub === 'trust') {
    if (args.length !== 2) throw new UsageError('pool trust: expected a pool name and a host (`meshd pool trust NAME HOST`)')
    return await trust(file, config, pools(file, config, args[0])[0]!, args[1]!, values.json === true)
  }
  throw new UsageError(sub === undefined ? 'pool: expected a subcommand: check or trust (see `meshd pool --help`)' : `pool: unknown subcommand "${sub}"; expected check or trust`)
}

function pools (file: string, config: Config, name: string | undefined): SshConfig[] {
  const all = config.providers.filter((p): p is SshConfig => p.kind === 'ssh')
  if (name === undefined) {
    if (all.length === 0) throw new ConfigError(file, 'providers', 'a provider of kind: ssh (the config has no SSH pool)')
    return all
  }
  const p = config.providers.find((x) => x.name === name)
  if (p === undefined) throw new ConfigError(file, 'providers', `a provider named ${name} (there are: ${config.providers.map((x) => x.name).join(', ') || 'none'})`)
  if (p.kind !== 'ssh') throw new ConfigError(file, `providers[${name}].kind`, `ssh for \`meshd pool\` (it is ${p.kind})`)
  return [p]
}

async function check (file: string, config: Config, list: SshConfig[], json: boolean): Promise<number> {
  const out: Array<{ pool: string, hosts: HostCheck[] }> = []
  for (const p of list) {
    const provider = await buildSsh(config, p)
    // A missing identity file is named at once, not found out host by host as "auth failed".
    const problems = provider.configProblems()
    if (problems.length > 0) throw new ConfigError(file, `providers[${p.name}]`, problems.join('; '), 1, 'cannot be used')
  }
  await Promise.all(list.map(async (p) => {
    const provider = await buildSsh(config, p, CHECK_TIMEOUTS)
    const hosts = await provider.check()
    out.push({ pool: p.name, hosts })
  }))
  out.sort((a, b) => list.findIndex((p) => p.name === a.pool) - list.findIndex((p) => p.name === b.pool))
  const bad = out.some((p) => p.hosts.some((h) => h.error !== null))
  if (json) { printJson({ pools: out }); return bad ? 1 : 0 }
  for (const p of out) {
    process.stdout.write(`pool ${p.pool}\n`)
    const rows = p.hosts.map((h) => {
      const f = h.facts
      return [
        h.host,
        h.reachable ? 'yes' : 'NO',
        h.hostKey,
        f === null ? '-' : `${f.os} ${f.arch}`,
        f?.cpus === null || f === null ? '-' : String(f.cpus),
        f?.memoryMb === null || f === null ? '-' : `${(f.memoryMb / 1024).toFixed(1)}G`,
        f === null ? '-' : f.gpus.length === 0 ? 'none' : f.gpus.join('; '),
        f?.freeDiskMb === null || f === null ? '-' : `${(f.freeDiskMb / 1024).toFixed(1)}G`,
        f === null ? '-' : f.installed === null ? 'no' : `${f.installed.version} (${(f.installed.contentsSha256 ?? f.installed.sha256).slice(0, 12)})`,
        f === null ? '-' : f.sudo.ok ? f.sudo.how : `no: ${f.sudo.why}`,
        h.nodes.length === 0 ? (h.facts === null ? '-' : 'none') : h.nodes.map((n) => `${n.key} ${n.state}`).join(', ')
      ]
    })
    process.stdout.write(renderTable(['HOST', 'REACHABLE', 'HOST KEY', 'OS/ARCH', 'CPUS', 'MEMORY', 'GPUS', 'FREE DISK', 'MESHD', 'SUDO', 'BURST NODE'], rows) + '\n')
    for (const h of p.hosts) if (h.error !== null) process.stdout.write(`  ${h.error.message}\n`)
  }
  return bad ? 1 : 0
}

async function trust (file: string, _config: Config, p: SshConfig, hostArg: string, json: boolean): Promise<number> {
  const host = p.hosts.find((h) => targetName({ host: h.ip, port: h.port ?? 22 }) === hostArg || h.ip === hostArg)
  if (host === undefined) throw new ConfigError(file, `providers[${p.name}].hosts`, `a host ${hostArg} (the pool has: ${p.hosts.map((h) => targetName({ host: h.ip, port: h.port ?? 22 })).join(', ')})`)
  const port = host.port ?? 22
  const name = targetName({ host: host.ip, port })
  const knownHosts = expandHome(p.known_hosts)
  let key: Buffer
  try {
    key = await fetchHostKey({ host: host.ip, port }, 10_000)
  } catch (e) {
    throw new CommandFailed(`pool trust: ${(e as Error).message}`)
  }
  const fp = fingerprint(key)
  const type = blobKeyType(key)
  const text = existsSync(knownHosts) ? readFileSync(knownHosts, 'utf8') : ''
  const verdict = checkHostKey(parseKnownHosts(text).entries, host.ip, port, type, key.toString('base64'))
  if (verdict.kind === 'changed') {
    throw new CommandFailed(`pool trust: WARNING: ${name} now offers ${type} ${fp}, but ${knownHosts} (line ${verdict.lines.join(', ')}) has ${verdict.known.join(', ')} for it. Not recorded. If the host was reinstalled, remove that line and run this again.`)
  }
  if (verdict.kind === 'revoked') throw new CommandFailed(`pool trust: ${name}'s key ${fp} is marked @revoked in ${knownHosts} (line ${verdict.line}). Not recorded.`)
  const already = verdict.kind === 'known'
  if (!already) {
    mkdirSync(dirname(knownHosts), { recursive: true })
    appendFileSync(knownHosts, (text === '' || text.endsWith('\n') ? '' : '\n') + knownHostsLine(host.ip, port, key), { mode: 0o644 })
  }
  if (json) printJson({ pool: p.name, host: name, key_type: type, fingerprint: fp, known_hosts: knownHosts, added: !already })
  else process.stdout.write(already ? `${name} ${type} ${fp} is already in ${knownHosts}\n` : `${name} ${type} ${fp}\nrecorded in ${knownHosts}\n`)
  return 0
}
