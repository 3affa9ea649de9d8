/**
 * The start path's process-level handlers (daemon/startup/fatal.ts), in a
 * real Node process: an uncaught exception or an unhandled rejection ends it
 * after exactly one `fatal` log line (before, Node printed a raw stack on
 * stderr and the log said nothing), with exit 4 when the state disk is the
 * cause and 1 otherwise.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { tempDir } from '../helpers/tmp.ts'
import { REPO } from '../helpers/daemon.ts'

t.test('one fatal line and the right exit code for whatever nobody caught', async (t) => {
  const dir = tempDir(t)
  const script = join(dir, 'crash.ts')
  const url = (p: string): string => pathToFileURL(join(REPO, p)).href
  writeFileSync(script, `
import { createLogger } from '${url('daemon/log.ts')}'
import { exitOnUncaught } from '${url('daemon/startup/fatal.ts')}'
exitOnUncaught(createLogger('info'))
const mode = process.argv[2]
setTimeout(() => {
  if (mode === 'disk') throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
  if (mode === 'bug') throw new TypeError('x is not a function')
  if (mode === 'rejection') void Promise.reject(new Error('nobody waited'))
}, 10)
setInterval(() => {}, 1000) // busy, as the daemon is
`)
  const cases: Array<[string, number, RegExp]> = [
    ['disk', 4, /^meshd stopped: uncaught exception: database or disk is full \(the state disk: free space or fix it, then start meshd again\)$/],
    ['bug', 1, /^meshd stopped: uncaught exception: x is not a function$/],
    ['rejection', 1, /^meshd stopped: unhandled promise rejection: nobody waited$/]
  ]
  for (const [mode, code, msg] of cases) {
    const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', script, mode], { encoding: 'utf8', timeout: 20_000 })
    t.equal(r.status, code, `${mode}: exit ${code} (${r.stderr})`)
    const lines = r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { level: string, msg: string, exit: number })
    const fatal = lines.filter((l) => l.level === 'fatal')
    t.equal(fatal.length, 1, `${mode}: one fatal line`)
    t.match(fatal[0], { msg, exit: code }, mode)
    t.equal(r.stderr, '', `${mode}: no raw stack on stderr`)
  }
})
