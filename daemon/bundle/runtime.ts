/**
 * The Node.js runtime a bundle carries: the `node-linux-<arch>` npm package
 * at the exact version package.json pins. For this machine's arch it is
 * already in node_modules (an optional dependency); for the other arch it is
 * fetched once with `npm pack` into a cache directory and unpacked there.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { BundleArch } from '../../providers/bundle-manifest.ts'
import { assertElfArch } from './elf.ts'

const run = promisify(execFile)

export interface NodeRuntime {
  /** A directory holding bin/node and LICENSE. */
  dir: string
  version: string
}

/** The pinned version of node-linux-<arch> in package.json; an exact version, so a bundle is reproducible. */
export function pinnedNodeVersion (pkg: { optionalDependencies?: Record<string, string> }, arch: BundleArch, pkgFile: string): string {
  const v = pkg.optionalDependencies?.[`node-linux-${arch}`]
  if (v === undefined) throw new Error(`${pkgFile}: optionalDependencies: expected "node-linux-${arch}" (the Node.js a bundle for ${arch} carries)`)
  if (!/^\d+\.\d+\.\d+$/.test(v)) throw new Error(`${pkgFile}: optionalDependencies.node-linux-${arch}: expected an exact version like 24.21.0, got ${JSON.stringify(v)}`)
  return v
}

function installedVersion (dir: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? null
  } catch {
    return null
  }
}

/** Finds or fetches node-linux-<arch>@version; `progress` hears about a download. */
export async function nodeRuntime (opts: { root: string, arch: BundleArch, version: string, cacheDir: string, progress: (line: string) => void }): Promise<NodeRuntime> {
  const { root, arch, version, cacheDir } = opts
  const name = `node-linux-${arch}`
  const local = join(root, 'node_modules', name)
  let dir: string
  if (installedVersion(local) === version && existsSync(join(local, 'bin', 'node'))) {
    dir = local
  } else {
    dir = join(cacheDir, `${name}-${version}`, 'package')
    if (!existsSync(join(dir, 'bin', 'node'))) await fetchRuntime(name, version, cacheDir, opts.progress)
  }
  assertElfArch(join(dir, 'bin', 'node'), arch, `the Node.js runtime (${name}@${version})`)
  return { dir, version }
}

async function fetchRuntime (name: string, version: string, cacheDir: string, progress: (line: string) => void): Promise<void> {
  mkdirSync(cacheDir, { recursive: true })
  progress(`fetching ${name}@${version} from the npm registry (npm pack) into ${cacheDir}`)
  let tgz: string
  try {
    const { stdout } = await run('npm', ['pack', `${name}@${version}`, '--pack-destination', cacheDir, '--silent'], { cwd: cacheDir, maxBuffer: 1 << 20, timeout: 600_000 })
    tgz = join(cacheDir, stdout.trim().split('\n').pop()!.trim())
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    const why = e.code === 'ENOENT' ? 'npm is not on PATH' : (e.stderr ?? e.message).trim().split('\n').slice(-3).join(' ')
    throw new Error(`could not fetch the Node.js runtime ${name}@${version} with \`npm pack ${name}@${version}\` (${why}); ` +
      `with npm and registry access, run it in ${cacheDir} and build again`)
  }
  const final = join(cacheDir, `${name}-${version}`)
  const tmp = `${final}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  try {
    await run('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node', 'package/LICENSE', 'package/package.json'])
    rmSync(final, { recursive: true, force: true })
    renameSync(tmp, final)
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true })
    throw new Error(`could not unpack ${tgz}: ${(err as Error).message}`)
  } finally {
    rmSync(tgz, { force: true })
  }
}
