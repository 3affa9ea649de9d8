/**
 * Issue 11: three voters started at once on loopback and joined in a chain
 * (the second through the first, the third through the second) must always
 * settle on one leader that all three name, within 5 s of the last join.
 * Each round starts three fresh daemons together; half the rounds join them
 * at once (while they still settle), half only after each has bootstrapped
 * a group of its own (the groups must merge: the case that stranded a voter).
 * The simulation (test/election/merge.test.ts) covers thousands of
 * interleavings; this checks the real thing end to end.
 *
 * E2E_MERGE_ROUNDS=N for more rounds (default 4; not MESHD_*: the daemons
 * refuse unknown MESHD_ variables in their environment).
 */
import t from 'tap'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { testCluster, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { statuses } from '../../daemon/localmesh/cluster.ts'

const ROUNDS = Number(process.env.E2E_MERGE_ROUNDS ?? 4)
const AGREE_MS = 5000

for (let round = 1; round <= ROUNDS; round++) {
  const late = round % 2 === 0
  t.test(`round ${round}: 3 voters started at once, joined in a chain ${late ? 'after each bootstrapped alone' : 'at once'}`, async (t) => {
    const root = tempDir(t)
    const c = testCluster(t, join(root, 'mesh'), writeSwarmKey(root))
    const nodes = await Promise.all(['a', 'b', 'c'].map(async (name) => c.start({ name })))
    if (late) {
      await waitFor(async () => (await statuses(nodes)).every((s) => typeof s.election?.group === 'string'), { timeoutMs: 20_000, what: 'each voter in a group of its own' })
      const groups = new Set((await statuses(nodes)).map((s) => s.election?.group))
      t.equal(groups.size, 3, 'three separate groups before the joins')
    }
    await c.join(nodes, 'chain')
    const joinedAt = performance.now()
    try {
      const { value, ms } = await c.waitLeader(nodes, { voters: 3, timeoutMs: AGREE_MS, intervalMs: 50 })
      t.pass(`all three name ${value.leader.slice(-8)} (term ${value.term}) ${Math.round(performance.now() - joinedAt)} ms after the last join (${Math.round(ms)} ms of polling)`)
    } catch (err) {
      const ss = await statuses(nodes).catch(() => [])
      t.fail(`no agreement within ${AGREE_MS} ms of the last join: ${(err as Error).message}\n${JSON.stringify(ss.map((s) => ({ leader: s.leader, term: s.term, election: s.election })), null, 1)}`)
    }
    await c.stop()
  })
}
