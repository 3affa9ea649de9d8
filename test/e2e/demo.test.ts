/**
 * `meshd demo`, the README's first command, runs its whole script and leaves
 * nothing behind: the mesh forms, a leader is elected, a kill is noticed, the
 * burst is cut by the budget and takes traffic, the leader fails over, the
 * burst is released, and every process it started is gone.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { meshd } from '../helpers/cli.ts'

function demoProcesses (): string[] {
  try {
    return execFileSync('pgrep', ['-f', 'meshd-demo-'], { encoding: 'utf8' }).split('\n').filter(Boolean)
  } catch {
    return []
  }
}

t.test('meshd demo --json', async (t) => {
  const before = new Set(demoProcesses())
  const r = await meshd(['demo', '--json'], { timeoutMs: 240_000 })
  t.equal(r.code, 0, r.stderr)
  const s = JSON.parse(r.stdout) as Record<string, unknown> & { burst: { decision: string, granted: number, requested: number, reason: string } }
  t.ok((s.converged_ms as number) < 5000, `converged in ${String(s.converged_ms)} ms`)
  t.ok(s.leader_elected_ms !== null, 'a leader was elected')
  t.ok((s.kill_detected_ms as number) < 3000, `kill noticed in ${String(s.kill_detected_ms)} ms`)
  t.match(s.burst, { decision: 'cut', requested: 5, granted: 3, reason: 'cost_budget 1.00/h allows 3 at 0.30/h' })
  t.ok((s.served_by_burst as number) > 0, `burst replicas served ${String(s.served_by_burst)} requests`)
  t.ok((s.failover_ms as number) < 5000, `leader failover in ${String(s.failover_ms)} ms`)
  t.ok((s.requests as number) > 100, `${String(s.requests)} requests`)
  t.ok((s.failed as number) <= (s.requests as number) * 0.05, `few failures (${String(s.failed)}: streams cut by the kills)`)
  t.ok((s.spend_per_hour_peak as number) <= 1.0 + 1e-9, 'spend never above the budget')
  t.equal(s.stopped_cleanly, true)
  t.same(demoProcesses().filter((p) => !before.has(p)), [], 'no process of the demo is left running')
})
