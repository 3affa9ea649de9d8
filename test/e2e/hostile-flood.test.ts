/**
 * Nothing a request does may starve the membership and election timers: a
 * real leader among three real voters is flooded through its front door with
 * the worst requests we know (bench/hostile-kinds.ts: 10 MB of `[[[[`, a
 * million keys, five million array elements, a 10 MB prompt, invalid UTF-8,
 * huge headers, a declared gigabyte, 2,000 pipelined requests, and 300
 * slowloris connections) while its /health is asked every 250 ms. Leadership
 * must not move (same leader, same term on every voter) and every /health
 * must be answered. How long the loop stalls is measured in bench/hostile.ts.
 */
import t from 'tap'
import { tempDir } from '../helpers/tmp.ts'
import { startJoined, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { KINDS, flood, slowConnections } from '../../bench/hostile-kinds.ts'

const FLOOD_MS = 15_000

t.test('a flood of hostile requests does not move leadership', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const replica = { models: ['sim'], slots: 4, command: 'sim', readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1, timeout_seconds: 2 } }
  const voters = await startJoined(t, root, ['v1', 'v2', 'v3'].map((name) => ({ name, swarmKeyFile, config: { replica } })), 'star')
  const { value: settled } = await waitFor(async () => {
    const s = await Promise.all(voters.map(async (v) => v.status()))
    const leader = s[0]!.leader
    return leader !== null && s.every((x) => x.leader === leader && x.term === s[0]!.term && x.members.filter((m) => m.state === 'alive').length === 3) ? { leader, term: s[0]!.term } : undefined
  }, { timeoutMs: 30_000, what: 'one leader that all three voters agree on' })
  const leader = voters.find((v) => v.peerId === settled.leader)!
  t.ok(leader, `leader ${leader.spec.name} in term ${settled.term}`)
  await waitFor(async () => (await fetch(`${leader.url}/health`)).status === 200, { timeoutMs: 20_000, what: 'the leader healthy' })

  const stop = new AbortController()
  t.teardown(() => { stop.abort() })
  const closeSlow = slowConnections(leader.httpPort, 300)
  t.teardown(closeSlow)
  const counts = flood(leader.httpPort, KINDS, 4, stop.signal)
  const health: Array<{ ok: boolean, status: number | string }> = []
  const terms = new Set<number>()
  const ends = Date.now() + FLOOD_MS
  while (Date.now() < ends) {
    const tick = Date.now()
    const status = await fetch(`${leader.url}/health`, { signal: AbortSignal.timeout(3000) }).then(async (r) => { await r.arrayBuffer(); return r.status }, (e: Error) => e.name)
    health.push({ ok: status === 200, status })
    terms.add((await leader.status()).term)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 250 - (Date.now() - tick))))
  }
  stop.abort()
  closeSlow()
  const seen = await counts
  t.comment(`requests answered during the flood: ${[...seen].map(([k, n]) => `${k} ×${n}`).join(', ')}`)
  t.ok([...seen.keys()].some((k) => k.startsWith('deep HTTP/1.1 400')), 'the deep bodies were refused with 400')
  t.ok(health.length >= FLOOD_MS / 250 / 2, `/health asked ${health.length} times`)
  const failed = health.filter((h) => !h.ok)
  t.same(failed, [], 'every /health of the leader was answered 200 within 3 s')
  t.same([...terms], [settled.term], 'the term did not change')
  const after = await Promise.all(voters.map(async (v) => v.status()))
  t.same(after.map((s) => [s.leader, s.term]), voters.map(() => [settled.leader, settled.term]), 'every voter still has the same leader in the same term')
})
