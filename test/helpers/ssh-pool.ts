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
import { dirname, join, resolve } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { BUNDLE_MANIFEST_FILE, BUNDLE_MANIFEST_VERSION, bundleTopDir, contentsDigest, type BundleFileEntry, type BundleManifest } from '../../providers/bundle-manifest.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { knownHostsLine, startSshd, type Sshd } from './sshd.ts'
import type { Teardown } from './tmp.ts'
import { writeSwarmKey } from './daemon.ts'

export const REPO = resolve(import.meta.dirname, '../..')

/**
 * A bundle stand-in, laid out as `meshd bundle` lays one out (one top
 * directory, the manifest first): bin/meshd execs this checkout's; `tag`
 * makes other contents (an upgrade); `payloadBytes` of random bytes (they do
 * not compress) make it big.
 */
export function standInBundle (dir: string, tag = 'v1', opts: { payloadBytes?: number, launcher?: string } = {}): string {
  const version = `0.1.0-${tag}`
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64'
  const top = bundleTopDir(version, arch)
  const src = join(dir, `bundle-src-${tag}`)
  rmSync(src, { recursive: true, force: true })
  const files: Record<string, { body: string | Buffer, mode: number }> = {
    'bin/meshd': { body: opts.launcher ?? `#!/bin/sh\n# stand-in bundle ${tag}\nexec ${REPO}/bin/meshd "$@"\n`, mode: 0o755 },
    'package.json': { body: JSON.stringify({ name: 'meshd', version }) + '\n', mode: 0o644 }
  }
  if (opts.payloadBytes !== undefined) files.payload = { body: randomBytes(opts.payloadBytes), mode: 0o644 }
  const entries: BundleFileEntry[] = []
  for (const [path, f] of Object.entries(files)) {
    mkdirSync(dirname(join(src, top, path)), { recursive: true })
    writeFileSync(join(src, top, path), f.body)
    chmodSync(join(src, top, path), f.mode)
    entries.push({ path, executable: (f.mode & 0o111) !== 0, sha256: createHash('sha256').update(f.body).digest('hex') })
  }
  const manifest: BundleManifest = { v: BUNDLE_MANIFEST_VERSION, name: 'meshd', version, platform: 'linux', arch, node: '24.21.0', contents_sha256: contentsDigest(entries), files: entries.length }
  writeFileSync(join(src, top, BUNDLE_MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')
  const out = join(dir, `bundle-${tag}.tar.gz`)
  execFileSync('tar', ['-czf', out, '-C', src, `${top}/${BUNDLE_MANIFEST_FILE}`, ...Object.keys(files).sort().map((f) => `${top}/${f}`)])
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

/**
 * The `providers:` entry of a `kind: ssh` pool over these servers (each host
 * its own install dir, the stand-in bundle), with `over` merged on top
 * (top-level keys replace).
 */
export function poolProvider (pool: Pool, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'pool',
    kind: 'ssh',
    user: 'root',
    identity_file: pool.identityFile,
    known_hosts: pool.knownHosts,
    install_dir: join(pool.root, 'opt'),
    bundle: pool.bundle,
    replica: { models: ['m'] },
    hosts: pool.servers.map((s, i) => ({ ip: s.host, port: s.port, install_dir: join(pool.root, `opt-h${i + 1}`) })),
    ...over
  }
}
