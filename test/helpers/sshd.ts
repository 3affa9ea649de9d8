/**
 * Real OpenSSH servers for tests: each its own `/usr/sbin/sshd -D -e` with
 * its own config, host key, client key and authorized_keys in a temp dir,
 * on a free loopback port (or inside a network namespace, listening on the
 * namespace's address). Root may log in by key only. Everything is stopped
 * and removed at teardown, also when the test fails.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import type { Teardown } from './tmp.ts'

export const SSHD = '/usr/sbin/sshd'

/** Why sshd tests cannot run here, or false when they can. */
export function sshdAvailable (): string | false {
  if (!existsSync(SSHD)) return 'needs openssh-server (apt-get install -y openssh-server; .ci/run does)'
  if (process.getuid?.() !== 0) return 'needs root (sshd runs as root and the tests log in as root)'
  return false
}

export interface Sshd {
  host: string
  port: number
  /** The client's private key (authorized on this server) and the server's public host key line (`ssh-ed25519 AAAA…`). */
  identityFile: string
  hostKeyPub: string
  dir: string
  /** The server process (its own session: killing its group ends every login). */
  proc: ChildProcess | null
  log: () => string
  stop: () => Promise<void>
  /** Starts it again on the same port and keys (after stop). */
  start: () => Promise<void>
  /** Replaces its host key (a reinstalled host) and restarts it. */
  rotateHostKey: () => Promise<void>
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => { resolve(typeof a === 'object' && a !== null ? a.port : 0) })
    })
  })
}

function keygen (file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'meshd-test', '-f', file], { stdio: 'ignore' })
}

export interface SshdOptions {
  /** Run inside this network namespace (`ip netns exec <ns>`) listening on `host`. */
  netns?: string
  host?: string
  port?: number
  /** Reuse a client key (one identity for a whole pool). */
  identityFile?: string
}

export async function startSshd (t: Teardown, opts: SshdOptions = {}): Promise<Sshd> {
  // Debian's sshd needs its privilege separation directory (the service unit makes it at boot).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  const dir = mkdtempSync(join(tmpdir(), 'meshd-sshd-'))
  const host = opts.host ?? '127.0.0.1'
  const port = opts.port ?? (opts.netns === undefined ? await freePort() : 22)
  keygen(join(dir, 'host_ed25519'))
  let identityFile = opts.identityFile
  if (identityFile === undefined) {
    identityFile = join(dir, 'client_ed25519')
    keygen(identityFile)
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${identityFile}.pub`), { mode: 0o600 })
  const config = join(dir, 'sshd_config')
  writeFileSync(config, [
    `Port ${port}`,
    `ListenAddress ${host}`,
    `HostKey ${join(dir, 'host_ed25519')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    // The temp dir is world-traversable /tmp: StrictModes would refuse it.
    'StrictModes no',
    'UsePAM no',
    'Subsystem sftp internal-sftp',
    'LogLevel VERBOSE',
    'MaxStartups 100:30:200',
    // bash run by sshd sources ~/.bashrc unless SHLVL says it is nested: the
    // machine's root .bashrc (pyenv, conda …) is not what is under test, and
    // a session killed in the middle of it can leave its locks behind.
    'SetEnv SHLVL=5',
    'MaxSessions 50',
    ''
  ].join('\n'))
  let out = ''
  const s: Sshd = {
    host,
    port,
    identityFile,
    hostKeyPub: '',
    dir,
    proc: null,
    log: () => out,
    start: async () => {
      s.hostKeyPub = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')
      const argv = [SSHD, '-D', '-e', '-f', config]
      const cmd = opts.netns === undefined ? argv : ['ip', 'netns', 'exec', opts.netns, ...argv]
      const from = out.length // a restart waits for its own "listening", not the last run's
      const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      s.proc = p
      p.stdout!.on('data', (d: Buffer) => { out += d.toString() })
      p.stderr!.on('data', (d: Buffer) => { out += d.toString() })
      await waitFor(() => out.slice(from).includes('Server listening') || p.exitCode !== null, { timeoutMs: 10_000, intervalMs: 20, what: `sshd on ${host}:${port}` })
      if (p.exitCode !== null) throw new Error(`sshd exited ${p.exitCode}: ${out}`)
    },
    stop: async () => {
      const p = s.proc
      if (p === null) return
      s.proc = null
      if (p.exitCode === null && p.signalCode === null) {
        // Every connection's sshd runs in its own session (sshd calls setsid),
        // so the group alone would leave them: kill its descendants too.
        for (const pid of descendants(p.pid!)) { try { process.kill(pid, 'SIGKILL') } catch {} }
        try { process.kill(-p.pid!, 'SIGKILL') } catch {}
        await new Promise<void>((resolve) => { if (p.exitCode !== null || p.signalCode !== null) resolve(); else p.once('exit', () => { resolve() }) })
      }
    },
    rotateHostKey: async () => {
      await s.stop()
      rmSync(join(dir, 'host_ed25519'), { force: true })
      rmSync(join(dir, 'host_ed25519.pub'), { force: true })
      keygen(join(dir, 'host_ed25519'))
      await s.start()
    }
  }
  t.teardown(async () => {
    await s.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  await s.start()
  return s
}

/** Pids of every process below `root` (by parent pid), deepest last. */
function descendants (root: number): number[] {
  const children = new Map<number, number[]>()
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(n)])
    } catch {}
  }
  const out: number[] = []
  const walk = (pid: number): void => { for (const c of children.get(pid) ?? []) { out.push(c); walk(c) } }
  walk(root)
  return out
}

/** A known_hosts line for this server, as `ssh-keyscan` / `meshd pool trust` would write it. */
export function knownHostsLine (s: Sshd): string {
  const name = s.port === 22 ? s.host : `[${s.host}]:${s.port}`
  return `${name} ${s.hostKeyPub}\n`
}
