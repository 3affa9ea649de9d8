/**
 * The bundle (`meshd bundle`) of this checkout, for the tests that boot real
 * burst nodes from one (the EC2 boot and end-to-end tests, their benchmark).
 * Building one takes ~30 s of both cores, so it is built once per source
 * digest and kept where build tools keep their caches, in
 * node_modules/.cache/meshd-test-bundles (not a temp dir: it is meant to
 * outlive the run, like esbuild's or babel's caches; `npm ci` clears it).
 * daemon/bundle/cache.ts does the naming, the integrity record and the
 * pruning; test files running side by side take turns through a lock file,
 * since one's pruning would remove another's half-written build.
 */
import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { BundleCache } from '../../daemon/bundle/cache.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { REPO } from './daemon.ts'

export interface Bundle { path: string, sha256: string }

const CACHE = join(REPO, 'node_modules', '.cache', 'meshd-test-bundles')

/** This checkout's bundle for this machine's arch: from the cache, or built into it. */
export async function testBundle (): Promise<Bundle> {
  const arch = process.arch === 'x64' || process.arch === 'arm64' ? process.arch : null
  if (arch === null) throw new Error(`meshd has no bundle for ${process.arch}`)
  mkdirSync(CACHE, { recursive: true })
  const lock = join(CACHE, '.lock')
  await waitFor(() => take(lock), { timeoutMs: 600_000, intervalMs: 250, what: `the test bundle lock ${lock}` })
  try {
    const path = await new BundleCache({ dir: CACHE }).bundleFor(arch)
    return { path, sha256: readFileSync(`${path}.sha256`, 'utf8').trim() }
  } finally {
    rmSync(lock, { force: true })
  }
}

/** Takes the lock file (holding this pid), or breaks it when its holder is dead. */
function take (lock: string): boolean {
  try {
    const fd = openSync(lock, 'wx')
    writeSync(fd, String(process.pid))
    closeSync(fd)
    return true
  } catch {
    let holder = NaN
    try { holder = Number(readFileSync(lock, 'utf8')) } catch { return false }
    if (Number.isInteger(holder) && holder > 0) {
      try { process.kill(holder, 0); return false } catch {}
    }
    // Its holder died (or never wrote its pid and is long gone): break it.
    rmSync(lock, { force: true })
    return false
  }
}
