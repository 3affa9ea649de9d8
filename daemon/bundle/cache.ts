/**
 * The bundles a leader installs on SSH pool hosts whose pool sets no
 * `bundle:`, made on first need and kept in `<state_dir>/bundles/`:
 *
 * - named `meshd-<version>-linux-<arch>-<inputs>.tar.gz`, where <inputs> is a
 *   digest of what went in (the sources of a checkout, or the contents of the
 *   install a bundled meshd runs from), so a cached file is never stale and
 *   an upgraded meshd makes a new one; the other files of that arch go;
 * - written under a temporary name and renamed when whole (build.ts), then its
 *   sha256 recorded beside it (`.sha256`): a file without its record (a crash
 *   between the two) or whose bytes no longer match it is not used, but
 *   removed and made again;
 * - one making per arch at a time: concurrent launches share one promise;
 * - reused across restarts (checked once per process, then remembered).
 *
 * Making one: a checkout builds with esbuild (build.ts, ~30 s: gzip -9 of
 * Node's binary is most of it); a meshd running from a bundle repacks its
 * own install when the arch matches (repack.ts) and otherwise cannot make
 * one at all: it says which command makes one and which key takes it.
 *
 * esbuild is a runtime dependency of meshd (package.json `dependencies`),
 * not a dev dependency: a leader installed from a checkout with
 * `npm install --omit=dev` builds bundles with it. A bundle leaves it out
 * (build.ts marks it external): a bundled meshd never builds, it repacks.
 */
import { createHash } from 'node:crypto'
import { createReadStream, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BundleArch } from '../../providers/bundle-manifest.ts'
import { readBundleFileManifest } from '../../providers/ssh/bundle-file.ts'
import { BUNDLED, MESHD_ROOT } from '../own-files.ts'
import { MESHD_VERSION } from '../version.ts'
import { buildBundle, sourceDigest } from './build.ts'
import { installedManifest, repackInstall } from './repack.ts'

/** How a bundle for one arch is made here, and a digest of what goes into it. */
export interface BundleSource {
  inputs: string
  /** Writes the bundle to `out` (whole or not at all). */
  make: (out: string, progress: (line: string) => void) => Promise<void>
}

export interface BundleCacheInit {
  /** `<state_dir>/bundles`. */
  dir: string
  /** @default this meshd: its checkout's sources, or its own install when it runs from a bundle */
  source?: (arch: BundleArch) => BundleSource
  /** @default MESHD_VERSION */
  version?: string
  /** Progress and outcome lines (a build takes seconds). */
  log?: (msg: string) => void
}

const NAME = /^meshd-.+-linux-(x64|arm64)-[0-9a-f]{16}\.tar\.gz(\.sha256|\.tmp-\d+)?$/

export class BundleCache {
  private readonly dir: string
  private readonly source: (arch: BundleArch) => BundleSource
  private readonly version: string
  private readonly log: (msg: string) => void
  private readonly pending = new Map<BundleArch, Promise<string>>()

  constructor (init: BundleCacheInit) {
    this.dir = init.dir
    this.source = init.source ?? ownSource
    this.version = init.version ?? MESHD_VERSION
    this.log = init.log ?? (() => {})
  }

  /** The bundle file for `arch`, made on first need; rejects with why none can be had. */
  bundleFor (arch: BundleArch): Promise<string> {
    let p = this.pending.get(arch)
    if (p === undefined) {
      p = this.get(arch)
      this.pending.set(arch, p)
      // A failure is not remembered: the next launch tries again (a fixed disk, a fetched runtime).
      p.catch(() => { if (this.pending.get(arch) === p) this.pending.delete(arch) })
    }
    return p
  }

  private async get (arch: BundleArch): Promise<string> {
    const src = this.source(arch)
    const name = `meshd-${this.version}-linux-${arch}-${src.inputs.slice(0, 16)}.tar.gz`
    const file = join(this.dir, name)
    mkdirSync(this.dir, { recursive: true })
    if (await this.intact(file)) {
      this.prune(arch, name)
      this.log(`bundle for ${arch}: reusing ${file}`)
      return file
    }
    rmSync(file, { force: true })
    rmSync(`${file}.sha256`, { force: true })
    this.log(`bundle for ${arch}: making ${file} (first launch on a pool host of this arch; takes a while)`)
    const t0 = performance.now()
    await src.make(file, (line) => { this.log(`bundle for ${arch}: ${line}`) })
    const sha = await sha256Of(file)
    // Recorded after the file is whole and in place: a file without it is not trusted.
    writeFileSync(`${file}.sha256.tmp`, `${sha}\n`)
    renameSync(`${file}.sha256.tmp`, `${file}.sha256`)
    this.prune(arch, name)
    this.log(`bundle for ${arch}: ready in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${file}, sha256 ${sha}`)
    return file
  }

  /** The file is there, matches its recorded sha256 and carries a manifest. */
  private async intact (file: string): Promise<boolean> {
    let want: string
    try { want = readFileSync(`${file}.sha256`, 'utf8').trim() } catch { return false }
    try {
      if (await sha256Of(file) !== want) {
        this.log(`bundle ${file} does not match its recorded sha256 (damaged): made again`)
        return false
      }
      await readBundleFileManifest(file)
      return true
    } catch (e) {
      this.log(`bundle ${file} is not usable (${(e as Error).message}): made again`)
      return false
    }
  }

  /** Other bundles of this arch (older versions or sources) and leftovers of interrupted builds go. */
  private prune (arch: BundleArch, keep: string): void {
    for (const f of readdirSync(this.dir)) {
      const m = NAME.exec(f)
      if (m === null || m[1] !== arch || f === keep || f === `${keep}.sha256`) continue
      rmSync(join(this.dir, f), { force: true, recursive: true })
    }
  }
}

async function sha256Of (file: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** This meshd as a bundle source: its checkout's sources, or its own install when it runs from a bundle. */
export function ownSource (arch: BundleArch): BundleSource {
  if (BUNDLED) {
    const own = installedManifest(MESHD_ROOT)
    if (own.arch !== arch) {
      throw new Error(`this meshd runs from a bundle for ${own.arch} (${MESHD_ROOT}), which has no sources to build one for ${arch}: ` +
        `run \`meshd bundle --arch ${arch}\` in a source checkout and set the pool's \`bundle:\` key to that file`)
    }
    return { inputs: own.contents_sha256, make: async (out) => { await repackInstall(MESHD_ROOT, out) } }
  }
  return {
    inputs: sourceDigest(MESHD_ROOT, arch),
    make: async (out, progress) => {
      await buildBundle({ root: MESHD_ROOT, arch, out, cacheDir: join(out, '..', 'runtimes'), progress })
    }
  }
}
