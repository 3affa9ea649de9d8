import { parseCommandArgs } from '../common/command.ts'
import { MESHD_VERSION, libp2pVersion } from '../../version.ts'
import { printJson } from '../common/daemon-client.ts'

export const help = `usage: meshd version [--json]

Prints the versions of meshd, the Node.js running it, and libp2p.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('version', argv, {})
  const v = { meshd: MESHD_VERSION, node: process.versions.node, libp2p: libp2pVersion() }
  if (values.json) printJson(v)
  else process.stdout.write(`meshd ${v.meshd}\nnode ${v.node}\nlibp2p ${v.libp2p}\n`)
  return 0
}
