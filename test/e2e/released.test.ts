/**
 * Released members leave `meshd status` (issue 11, item 4): a member that
 * announced `left`, and burst members whose instances the ledger terminated,
 * are gone rather than down. Real daemons: an always-on voter with the local
 * provider (0.30/h per burst replica), an always-on non-voter that leaves,
 * `burst --count 2`, `burst --terminate --all`. Afterwards `status` shows and
 * counts only the always-on members; `status --all` and `--json` still show
 * the released ones, with their state and no cost.
 */
import t from 'tap'
import { join } from 'node:path'
import { readdirSync } from 'node:fs'
import { tempDir, type Teardown } from '../helpers/tmp.ts'
import { startJoined, writeSwarmKey } from '../helpers/daemon.ts'
import { meshd } from '../helpers/cli.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { readManifest } from '../../providers/local/manifest.ts'
import { isOurProcess } from '../../providers/local/liveness.ts'
import type { StatusDocument } from '../../daemon/status.ts'

const sim = { ttft_ms: 20, tokens_per_second: 100, max_tokens: 8 }

/** Burst processes are detached (they outlive their launcher): kill them at teardown ourselves. */
function reapBurst (t: Teardown, workDir: string): void {
  t.teardown(() => {
    for (const n of listDir(workDir)) {
      const m = readManifest(join(workDir, n))
      if (m?.pid != null) { try { process.kill(-m.pid, 'SIGKILL') } catch {} try { process.kill(m.pid, 'SIGKILL') } catch {} }
    }
  })
}

function listDir (dir: string): string[] {
  try { return readdirSync(dir) } catch { return [] }
}

function runningBurst (workDir: string): number {
  return listDir(workDir).map((n) => readManifest(join(workDir, n))).filter((m) => m !== null && isOurProcess(m.pid, m.config)).length
}

t.test('after leave and burst --terminate --all, status shows only the always-on members', async (t) => {
  const root = tempDir(t)
  const workDir = join(root, 'work')
  reapBurst(t, workDir)
  const swarmKeyFile = writeSwarmKey(root)
  const [v1, , n3] = await startJoined(t, root, [
    {
      name: 'v1',
      swarmKeyFile,
      config: {
        replica: { models: ['llama3'], slots: 4, command: 'sim', sim },
        burst: { cost_budget: 1.0, check_interval: '2s' },
        providers: [{ name: 'workstation', kind: 'local', cost_per_hour: 0.3, max_instances: 4, work_dir: workDir, replica: { models: ['llama3'], slots: 4, command: 'sim', sim } }]
      }
    },
    { name: 'n2', swarmKeyFile, config: { voter: false } },
    { name: 'n3', swarmKeyFile, config: { voter: false } }
  ], 'star')
  const status = async (...args: string[]) => meshd(['status', ...args, '--config', v1!.configPath])
  await waitFor(async () => (await v1!.status()).leader === v1!.peerId, { timeoutMs: 10_000, what: 'v1 to lead' })
  await waitFor(async () => (await v1!.status()).members.filter((m) => m.state === 'alive').length === 3, { timeoutMs: 10_000, what: 'v1 to see all three alive' })

  await t.test('a member that left is gone from status, kept under --all', async (t) => {
    const r = await meshd(['leave', '--config', n3!.configPath])
    t.equal(r.code, 0, r.stderr)
    await n3!.exited()
    const { value: doc } = await waitFor(async () => {
      const d = await v1!.status()
      return d.released?.some((m) => m.id === n3!.peerId) === true ? d : undefined
    }, { timeoutMs: 10_000, what: 'n3 released on v1' })
    t.notOk(doc.members.some((m) => m.id === n3!.peerId), 'not among the members')
    t.match(doc.released, [{ id: n3!.peerId, name: 'n3', state: 'left', released: 'left', cost_per_hour: 0 }])
    const table = await status()
    t.match(table.stdout, /^Mesh test: 2\/2 members alive · 1 released \(status --all lists them\) · leader v1/m)
    t.notMatch(table.stdout, /\bn3\b/, 'the table does not list it')
    const all = await status('--all')
    t.match(all.stdout, /^n3\s+\S+\s+static\s+local\s+left\s/m, '--all lists it, as left')
  })

  await t.test('burst --count 2 then --terminate --all: the burst members are released', async (t) => {
    const b = await meshd(['burst', '--count', '2', '--json', '--config', v1!.configPath], { timeoutMs: 90_000 })
    t.equal(b.code, 0, b.stderr)
    t.match(JSON.parse(b.stdout), { granted: 2 })
    const { value: burst } = await waitFor(async () => {
      const bs = (await v1!.status()).members.filter((m) => m.burst === true && m.state === 'alive')
      return bs.length === 2 ? bs : undefined
    }, { timeoutMs: 60_000, what: 'two burst members alive' })
    t.same(burst.map((m) => m.cost_per_hour), [0.3, 0.3], 'while they run, they cost')
    t.match((await status()).stdout, /^Mesh test: 4\/4 members alive · 1 released/m)

    const r = await meshd(['burst', '--terminate', '--all', '--json', '--config', v1!.configPath], { timeoutMs: 90_000 })
    t.equal(r.code, 0, r.stderr)
    t.match(JSON.parse(r.stdout), { granted: 2 })
    await waitFor(() => runningBurst(workDir) === 0, { timeoutMs: 60_000, what: 'every burst process to exit' })
    const ids = new Set(burst.map((m) => m.id))
    // Not an hour as `dead`: gone as soon as the ledger has them terminated.
    const { value: doc, ms } = await waitFor(async () => {
      const d = await v1!.status()
      return d.members.every((m) => !ids.has(m.id)) ? d : undefined
    }, { timeoutMs: 15_000, what: 'the burst members to leave status' })
    t.pass(`gone from status ${Math.round(ms)} ms after their processes exited`)
    t.same(doc.members.map((m) => m.name).sort(), ['n2', 'v1'], 'members: only the always-on ones still in the mesh')
    t.same(doc.released?.filter((m) => ids.has(m.id)).map((m) => [m.released, m.cost_per_hour, m.burst]), [['terminated', 0, true], ['terminated', 0, true]],
      '--json keeps them under released, marked, at no cost')
    t.ok(doc.released?.every((m) => m.state !== 'alive'), 'each with its state')

    const table = await status()
    t.match(table.stdout, /^Mesh test: 2\/2 members alive · 3 released \(status --all lists them\) · leader v1/m, 'the header counts only the always-on members')
    t.notMatch(table.stdout, /burst/, 'no burst row')
    t.notMatch(table.stdout, /0\.30/, 'no cost per hour of a released member')
    const all = await status('--all')
    t.equal(all.code, 0)
    t.match(all.stdout, /^Mesh test: 2\/2 members alive · 3 released · leader/m)
    t.equal(all.stdout.match(/workstation \(burst\)\s+\S+\s+released \((suspect|dead)\)\s.*\s-\s+\S+$/gm)?.length, 2, '--all lists both, released, no cost')
    const allJson = JSON.parse((await status('--all', '--json')).stdout) as StatusDocument
    t.equal(allJson.members.length, 5, '--all --json: every member in members')
    t.equal(allJson.released, undefined)
  })
})
