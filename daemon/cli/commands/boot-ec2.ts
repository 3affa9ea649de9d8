/**
 * `meshd boot-ec2 --spec FILE`: the last step of an EC2 burst node's user
 * data (providers/aws/boot.ts does the work). Thin: it hands boot the config
 * validator and the leader's node naming, which providers/ may not import.
 */
import { parseCommandArgs, CommandFailed } from '../common/command.ts'
import { printJson } from '../common/daemon-client.ts'
import { validateConfig } from '../../config/load.ts'
import { nodeName } from '../../leader/plan/launch-request.ts'
import { bootEc2, BootError } from '../../../providers/aws/boot.ts'
import { BOOT_SPEC_PATH } from '../../../providers/aws/boot-spec.ts'

export const help = `usage: meshd boot-ec2 [--spec FILE] [--json]

Run by an EC2 burst node's user data once the bundle is installed: reads the
boot spec the leader wrote into the user data (--spec, default ${BOOT_SPEC_PATH}),
learns which instance this is from the instance metadata (IMDSv2: id, zone,
region, type, spot or on-demand, private address, the tags meshd:key and
meshd:price), fetches the swarm key (from the spec, SSM Parameter Store or
Secrets Manager), writes the node's config and swarm key (mode 0600), and
starts \`meshd start\` under the systemd unit meshd-burst.service (when
systemd runs; Restart=on-failure) or in its own session with a pid file.
It waits for the node's "meshd started" line.

Running it again on the same instance starts no second node.

  --json   what was done (outcome started|running, instance, config file,
           pid or unit, mesh address) as one JSON document

Exit status: 0 started or already running; 1 a step failed (the message
names the step: spec, metadata, swarm key, config, files, start); 2 bad usage.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('boot-ec2', argv, { spec: { type: 'string', default: BOOT_SPEC_PATH } })
  try {
    const r = await bootEc2({ specFile: values.spec, validateConfig, nodeName })
    if (values.json) printJson({ outcome: r.outcome, instance: r.facts.instanceId, zone: r.facts.zone, config: r.configFile, ...(r.pid === undefined ? {} : { pid: r.pid }), ...(r.unit === undefined ? {} : { unit: r.unit }), ...(r.address === undefined ? {} : { address: r.address }) })
    return 0
  } catch (err) {
    if (err instanceof BootError) throw new CommandFailed(err.message)
    throw err
  }
}
