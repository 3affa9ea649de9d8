/**
 * `meshd burst` when the leader dies holding the request: the CLI cannot know
 * whether the burst happened, so it says the outcome is unknown, names the
 * request id and how to look, and exits 3 (it said "Unexpected end of JSON
 * input", exit 1, and an operator who retried doubled the burst). A retry
 * with the same request id is then answered once and repeats as the same
 * decision.
 *
 * Real daemons: three voters and a non-voter the CLI talks to. The two
 * followers are stopped (SIGSTOP) so the leader cannot commit the decision
 * and holds the request; once its log shows the request arrived it is
 * killed (kill -9). Election timeouts are long so that the leader's lease
 * outlives the few seconds this takes (it stays the acting leader).
 */
import t from 'tap'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { startJoined, writeSwarmKey } from '../helpers/daemon.ts'
import { meshd } from '../helpers/cli.ts'
import { reapBurst, runningBurst } from '../helpers/burst.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { agreedLeader, statuses } from '../../daemon/localmesh/cluster.ts'

const sim = { ttft_ms: 20, tokens_per_second: 100, max_tokens: 8 }

t.test('kill -9 of the leader holding a burst request: outcome unknown, exit 3; a retry with the request id bursts once', async (t) => {
  const root = tempDir(t)
  const workDir = join(root, 'work')
  reapBurst(t, workDir)
  const swarmKeyFile = writeSwarmKey(root)
  const config = {
    election: { heartbeat_ms: 300, election_timeout_min_ms: 6000, election_timeout_max_ms: 7000 },
    burst: { cost_budget: 1.0, check_interval: '10m' },
    providers: [{ name: 'workstation', kind: 'local', cost_per_hour: 0.3, max_instances: 4, work_dir: workDir, replica: { models: ['llama3'], slots: 1, command: 'sim', sim } }]
  }
  const nodes = await startJoined(t, root, [
    ...['v1', 'v2', 'v3'].map((name) => ({ name, swarmKeyFile, config })),
    { name: 'n4', swarmKeyFile, config: { ...config, voter: false } }
  ], 'star')
  const asker = nodes[3]!
  // Every follower stopped at the end is resumed, so teardown can kill it.
  t.teardown(() => { for (const n of nodes) if (n.running) n.kill('SIGCONT') })

  const { value: leaderId } = await waitFor(async () => {
    const ss = await statuses(nodes)
    const l = agreedLeader(ss.slice(0, 3), 3)?.leader ?? null
    return l !== null && ss[3]!.leader === l ? l : null
  }, { timeoutMs: 60_000, what: 'one leader, known to the non-voter' })
  const leader = nodes.find((n) => n.peerId === leaderId)!
  const followers = nodes.slice(0, 3).filter((n) => n !== leader)

  for (const f of followers) f.kill('SIGSTOP')
  const id = 'r-unknown-outcome-test-1'
  const cli = meshd(['burst', '--count', '1', '--request-id', id, '--config', asker.configPath], { timeoutMs: 60_000 })
  await waitFor(async () => leader.logs.some((l) => l.request === id && /burst request .* received from/.test(l.msg)), { timeoutMs: 20_000, intervalMs: 20, what: 'the leader to log that it received the request' })
  leader.kill('SIGKILL')
  const r = await cli

  t.equal(r.code, 3, `exit 3, outcome unknown; stderr: ${r.stderr}`)
  t.notMatch(r.stderr, /Unexpected end of JSON input\.?$/m, 'not a JSON parser\'s message as the verdict')
  t.match(r.stderr, new RegExp(`^meshd: burst: outcome unknown: ${leaderId} took the request but no answer came back \\(`))
  t.match(r.stderr, `Request id: ${id}`)
  t.match(r.stderr, '`meshd status`')
  t.match(r.stderr, `To retry without doubling it: meshd burst --count 1 --config ${asker.configPath} --request-id ${id}`)
  t.equal(r.stdout, '', 'no decision printed')

  // The mesh recovers; the retry the message suggests is decided once.
  for (const f of followers) f.kill('SIGCONT')
  const survivors = nodes.filter((n) => n !== leader)
  await waitFor(async () => {
    const ss = await statuses(survivors)
    const l = ss[0]!.leader
    return l !== null && l !== leaderId && ss.every((s) => s.leader === l)
  }, { timeoutMs: 60_000, what: 'a new leader' })
  const retry = await meshd(['burst', '--count', '1', '--json', '--request-id', id, '--config', asker.configPath], { timeoutMs: 90_000 })
  t.equal(retry.code, 0, retry.stderr)
  const first = JSON.parse(retry.stdout) as { granted: number, instances: string[] }
  t.equal(first.granted, 1)
  const again = await meshd(['burst', '--count', '1', '--json', '--request-id', id, '--config', asker.configPath], { timeoutMs: 90_000 })
  t.equal(again.code, 0, again.stderr)
  t.same(JSON.parse(again.stdout), first, 'the same request id gets the same decision')
  const { value: running } = await waitFor(async () => { const r = runningBurst(workDir); return r.length > 0 ? r : null }, { timeoutMs: 30_000, what: 'the burst node' })
  t.same(running, first.instances, 'one burst node, not two')
})

t.test('burst --help documents exit 3 and --request-id', async (t) => {
  const r = await meshd(['burst', '--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /--request-id ID/)
  t.match(r.stdout, /3 when the outcome is unknown/)
})
