import { parseCommandArgs, UsageError } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'

export const help = `usage: meshd leave [--timeout SECONDS] [--config FILE] [--json]

Leaves the mesh for good: a voter first gets its own removal from the voter
set committed (a leader removes itself and hands over; a follower asks the
leader), so the voters that stay count quorum without it. Then it announces
its departure (others list it as "left"), drains the requests in flight, and
stops the daemon. Under systemd the unit then stays stopped (exit status 0).

If the removal cannot be committed within --timeout (default 20 s) — e.g.
the other voters it needs are down — nothing changes: the daemon keeps
running as a voter, and leave says why and exits 1.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('leave', argv, { timeout: { type: 'string' } })
  const seconds = values.timeout === undefined ? 20 : Number(values.timeout)
  if (!(Number.isFinite(seconds) && seconds > 0 && seconds <= 600)) throw new UsageError(`leave: --timeout must be a number of seconds in (0, 600], got "${values.timeout ?? ''}"`)
  const config = configFor(values.config)
  const result = await call(config, 'leave', { timeout_ms: Math.round(seconds * 1000) }, { timeoutMs: seconds * 1000 + 30_000 }) as { voter?: { outcome: string, reason: string } }
  if (values.json) printJson(result)
  else {
    if (result.voter !== undefined && result.voter.outcome !== 'not_a_voter') process.stdout.write(`voter set: ${result.voter.reason}\n`)
    process.stdout.write('leaving the mesh: draining and stopping\n')
  }
  return 0
}
