/**
 * `meshd config check`: the config as `meshd start` would read it (the file,
 * then the MESHD_* variables of this environment), validated without starting
 * anything, like `nginx -t` or `nomad config validate`. Exit 0 with a one-line
 * summary, or 2 with the message `start` would have stopped on.
 */
import { parseCommandArgs, UsageError } from '../common/command.ts'
import { printJson } from '../common/daemon-client.ts'
import { readConfig, resolveConfigPath } from '../../config/load.ts'
import type { Config } from '../../config/schema.ts'
import type { EnvOverride } from '../../config/env.ts'

export const help = `usage: meshd config check [--config FILE] [--json]

Validates the config as \`meshd start\` reads it: the file (--config, else
$MESHD_CONFIG, else /etc/meshd/meshd.yaml) with every MESHD_<PATH> variable of
this environment applied, without starting anything. Run it with the service's
environment (e.g. \`systemctl show meshd -p Environment\`) to check what the
service will see.

Exit 0 and a one-line summary when the config is valid; exit 2 and a message
naming the file (or the MESHD_* variable), the key and what was expected when
not. Every key is described in docs/configuration.md.

  --json   the summary, the variables applied and the resolved config (every
           default filled in, durations in milliseconds, API keys redacted) as
           one JSON document`

export async function run (argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('config', argv, {}, true)
  if (positionals[0] !== 'check' || positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'config: expected a subcommand: check (see `meshd config --help`)' : `config: unknown subcommand "${positionals.join(' ')}"; expected check`)
  }
  const file = resolveConfigPath(values.config)
  const { config, overrides } = readConfig(file)
  const line = summary(file, config, overrides)
  // The API keys are bearer secrets: a deploy log gets how many there are, not what they are.
  const shown = { ...config, http: { ...config.http, api_keys: config.http.api_keys.map(() => '(redacted)') } }
  if (values.json) printJson({ ok: true, file, summary: line, overrides: overrides.map((o) => ({ variable: o.variable, key: o.path.join('.') })), config: shown })
  else process.stdout.write(line + '\n')
  return 0
}

/** One line an operator can read in a deploy log: what this node will be. */
export function summary (file: string, c: Config, overrides: readonly EnvOverride[]): string {
  const parts = [
    `cluster ${c.cluster}`,
    `node ${c.node_name} (${c.voter ? 'voter' : 'not a voter'})`,
    c.replica === undefined ? 'no replica (routes only)' : `replica ${c.replica.models.join(', ')} (${c.replica.slots} slots, ${c.replica.command ?? c.replica.url ?? ''})`,
    c.providers.length === 0 ? 'no providers' : `providers ${c.providers.map((p) => `${p.name} (${p.kind})`).join(', ')}`,
    `burst ${c.burst.mode} within ${c.burst.cost_budget.toFixed(2)}/h`,
    `http ${c.http.listen}`
  ]
  const env = overrides.length === 0 ? '' : `; from the environment: ${overrides.map((o) => o.variable).join(', ')}`
  return `${file}: ok: ${parts.join(', ')}${env}`
}
