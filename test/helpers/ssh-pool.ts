/**
 * An SSH pool for tests: real sshd's on loopback (test/helpers/sshd.ts), one
 * client key for all, a known_hosts with their keys, and a stand-in bundle
 * (tar.gz) whose bin/meshd execs this checkout's bin/meshd — the "hosts" are
 * this machine, so a real meshd burst node starts on them. Every burst node
 * started under the pool's dirs is SIGKILLed at teardown, also on failure.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { knownHostsLine, startSshd, type Sshd } from './sshd.ts'
import type { Teardown } from './tmp.ts'
import { writeSwarmKey } from './daemon.ts'

export const REPO = resolve(import.meta.dirname, '../..')

/** A bundle stand-in: bin/meshd execs this checkout's; `tag` makes another sha256 (an upgrade). */
export function standInBundle (dir: string, tag = 'v1'): string {
  const src = join(dir, `bundle-src-${tag}`)
  mkdirSync(join(src, 'bin'), { recursive: true })
  writeFileSync(join(src, 'bin', 'meshd'), `#!/bin/sh\n# stand-in bundle ${tag}\nexec ${REPO}/bin/meshd "$@"\n`)
  chmodSync(join(src, 'bin', 'meshd'), 0o755)
  writeFileSync(join(src, 'package.json'), JSON.stringify({ name: 'meshd', version: `0.1.0-${tag}` }) + '\n')
  const out = join(dir, `bundle-${tag}.tar.gz`)
  execFileSync('tar', ['-czf', out, '-C', src, '.'])
  return out
}

/** Pids of processes whose command line mentions `root`. */
export function processesUnder (root: string): number[] {
  const out: number[] = []
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${n}/cmdline`, 'utf8')
      if (cmd.includes(root) && !cmd.includes('sshd')) out.push(Number(n))
    } catch {}
  }
  return out
}

export interface Pool {
  root: string
  servers: Sshd[]
  knownHosts: string
  identityFile: string
  bundle: string
  swarmKey: string
}

export async function startPool (t: Teardown, count: number, opts: { netns?: Array<{ ns: string, ip: string }> } = {}): Promise<Pool> {
  const root = mkdtempSync(join(tmpdir(), 'meshd-pool-'))
  t.teardown(async () => {
    const pids = processesUnder(root)
    for (const p of pids) { try { process.kill(p, 'SIGKILL') } catch {} }
    await waitFor(() => processesUnder(root).length === 0, { timeoutMs: 10_000, intervalMs: 50, what: 'burst nodes on the pool to die' }).catch(() => {})
    rmSync(root, { recursive: true, force: true })
  })
  const identityFile = join(root, 'id_ed25519')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'meshd-pool-test', '-f', identityFile], { stdio: 'ignore' })
  const servers: Sshd[] = []
  for (let i = 0; i < count; i++) {
    const ns = opts.netns?.[i]
    servers.push(await startSshd(t, ns === undefined ? { identityFile } : { identityFile, netns: ns.ns, host: ns.ip, port: 22 }))
  }
  const knownHosts = join(root, 'known_hosts')
  writeFileSync(knownHosts, servers.map(knownHostsLine).join(''))
  const swarmKey = writeSwarmKey(root)
  return { root, servers, knownHosts, identityFile, bundle: standInBundle(root), swarmKey }
}
