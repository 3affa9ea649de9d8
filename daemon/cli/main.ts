/**
 * `meshd` command line. Each command lives in its own module and is imported
 * only when called, so `meshd status` never loads libp2p.
 *
 * Exit status (README, Command line): 0 success, 1 the operation failed (message on
 * stderr), 2 bad usage or bad config (the message names the file, the key and
 * what was expected).
 */
import { UsageError, CommandFailed, type CommandModule } from './common/command.ts'

const COMMANDS: Record<string, { summary: string, load: () => Promise<CommandModule> }> = {
  init: { summary: 'write a config and a fresh swarm key if absent; print the multiaddrs to join', load: async () => import('./commands/init.ts') },
  start: { summary: 'run the daemon in the foreground (what the systemd unit runs)', load: async () => import('./commands/start.ts') },
  join: { summary: 'tell the local daemon to join the mesh through these peers', load: async () => import('./commands/join.ts') },
  leave: { summary: 'leave the voter set (committed), announce departure, drain, stop', load: async () => import('./commands/leave.ts') },
  status: { summary: 'the mesh as this node sees it: members, leader, load, cost', load: async () => import('./commands/status.ts') },
  burst: { summary: 'ask the leader for N more burst replicas, or --terminate some', load: async () => import('./commands/burst.ts') },
  voters: { summary: 'the voter set (names, ids); remove a voter that will not return; reset --force on a survivor', load: async () => import('./commands/voters.ts') },
  pool: { summary: 'SSH pools: check every host (reachable, host key, facts, meshd, burst node); trust a host key', load: async () => import('./commands/pool.ts') },
  providers: { summary: 'cloud providers: check EC2 permissions per region (DryRun); print a launch template\'s user data', load: async () => import('./commands/providers.ts') },
  config: { summary: 'config check: validate the config (file and MESHD_* variables) without starting', load: async () => import('./commands/config.ts') },
  demo: { summary: 'a self-contained local mesh that shows the whole job on this machine', load: async () => import('./commands/demo.ts') },
  'install-service': { summary: 'install the systemd unit, a meshd user and the directories', load: async () => import('./commands/install-service.ts') },
  'boot-ec2': { summary: 'on an EC2 burst node (its user data runs it): read the instance metadata, write the config and swarm key, start meshd', load: async () => import('./commands/boot-ec2.ts') },
  bundle: { summary: 'build one archive with meshd, its native addons and its Node for a bare Linux host', load: async () => import('./commands/bundle.ts') },
  version: { summary: 'meshd, Node.js and libp2p versions', load: async () => import('./commands/version.ts') }
}

function usage (): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length))
  return [
    'usage: meshd <command> [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'every command takes --config FILE (default: $MESHD_CONFIG, else /etc/meshd/meshd.yaml);',
    'commands that print tables take --json. `meshd <command> --help` for its options.'
  ].join('\n')
}

async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n')
    return name === undefined ? 2 : 0
  }
  if (name === '--version') return main(['version'])
  const entry = COMMANDS[name]
  if (entry === undefined) {
    process.stderr.write(`meshd: unknown command "${name}"\n\n${usage()}\n`)
    return 2
  }
  const mod = await entry.load()
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(mod.help + '\n')
    return 0
  }
  return mod.run(rest)
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  if (err instanceof UsageError || (err as { exitCode?: number }).exitCode === 2) {
    process.stderr.write(`meshd: ${(err as Error).message}\n`)
    process.exitCode = 2
  } else if (err instanceof CommandFailed) {
    process.stderr.write(`meshd: ${err.message}\n`)
    process.exitCode = 1
  } else {
    process.stderr.write(`meshd: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exitCode = 1
  }
})
