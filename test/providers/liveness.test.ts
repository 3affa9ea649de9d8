/**
 * Telling our node's process from a reused pid, by its command line, also
 * in the moment Linux shows no command line at all: while the process
 * execs (bin/meshd is a shell script that execs node). A launcher that
 * read "no arguments" as "gone" recorded a live node as terminated and
 * lost it (CI run of stop 15: "instance local-cmp-create-1 not found").
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { commandLine, identify, isOurProcess, mayBeOurProcess, pidsByConfig, type Identity } from '../../providers/local/liveness.ts'

const LINUX = process.platform === 'linux'

/**
 * Like bin/meshd: a shell, given the config as an argument of its own, that
 * forks a command substitution and then execs node with the same arguments.
 */
function started (config: string, prelude = 'x=$(uname -m); '): Promise<ChildProcess> {
  const script = `${prelude}exec "$0" -e 'setTimeout(() => {}, 30000)' -- "$@"`
  const c = spawn('/bin/sh', ['-c', script, process.execPath, 'start', '--config', config], { stdio: 'ignore' })
  return new Promise((resolve, reject) => {
    c.once('spawn', () => resolve(c))
    c.once('error', reject)
  })
}

function execed (pid: number): boolean {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(process.execPath + '\0-e')
}

async function ended (c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  const done = new Promise<void>((resolve) => c.once('exit', () => resolve()))
  c.kill('SIGKILL')
  await done
}

t.test('a shell that execs our node is never taken for gone or for another process on its way', { skip: !LINUX && 'reads /proc' }, async (t) => {
  const config = `/nonexistent/meshd-liveness-${process.pid}.json`
  let sawChanging = 0
  for (let run = 0; run < 40; run++) {
    const c = await started(config)
    t.teardown(() => ended(c))
    const seen: Identity[] = []
    // The shell's command line names the config too (as bin/meshd's does): read until the exec'd
    // program shows its own, so the exec window is crossed, or until the answer is wrong.
    for (;;) {
      const who = identify(c.pid!, config)
      if (seen.at(-1) !== who) seen.push(who)
      if (who === 'gone' || who === 'other') break
      if (who === 'ours' && execed(c.pid!)) break
    }
    t.notOk(seen.includes('gone') || seen.includes('other'), `run ${run}: seen ${seen.join(' → ')}`)
    if (seen.includes('changing')) sawChanging++
    await ended(c)
  }
  t.comment(`the exec window was seen in ${sawChanging} of 40 runs`)
})

t.test('ours, another process, gone', { skip: !LINUX && 'reads /proc' }, async (t) => {
  const config = `/nonexistent/meshd-liveness-b-${process.pid}.json`
  const c = await started(config, '')
  t.teardown(() => ended(c))
  await waitFor(() => execed(c.pid!), { timeoutMs: 5000, what: 'node to run' })
  t.equal(identify(c.pid!, config), 'ours')
  t.ok(isOurProcess(c.pid!, config))
  t.equal(identify(c.pid!, '/another/config.json'), 'other', 'a reused pid: the command line names another config')
  t.notOk(mayBeOurProcess(c.pid!, '/another/config.json'))
  await ended(c)
  t.equal(identify(c.pid!, config), 'gone', 'reaped')
  t.notOk(mayBeOurProcess(c.pid!, config))
  t.equal(identify(2, config), 'other', 'a kernel thread (kthreadd) has no command line and is never ours')
  t.equal(identify(null, config), 'gone')
  t.equal(identify(0, config), 'gone')
})

t.test('a forked copy of the launcher script (a command substitution) is not a second node', { skip: !LINUX && 'reads /proc' }, async (t) => {
  const config = `/nonexistent/meshd-liveness-c-${process.pid}.json`
  // The subshell of $(sleep 2; :) is a fork of the script, with its command line, until sleep ends.
  const c = await started(config, 'x=$(sleep 2; :); ')
  t.teardown(() => ended(c))
  const all = (): number[] => readdirSync('/proc').filter((n) => /^\d+$/.test(n) && commandLine(Number(n))?.includes(config) === true).map(Number)
  await waitFor(() => all().length === 2, { timeoutMs: 5000, intervalMs: 5, what: 'the forked copy to show' })
  t.same(pidsByConfig(config), [c.pid], 'only the script itself, not its forked copy')
  await ended(c)
})
