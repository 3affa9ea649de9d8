/**
 * `meshd bundle`: build the archive a bare Linux host runs meshd from
 * (daemon/bundle/build.ts). Progress on stderr; the file, its size and its
 * sha256 on stdout (or as JSON, with the manifest).
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseCommandArgs, UsageError, CommandFailed } from '../common/command.ts'
import { printJson } from '../common/daemon-client.ts'
import { meshdRoot } from '../common/meshd-root.ts'
import { MESHD_VERSION } from '../../version.ts'
import { buildBundle, hostArch } from '../../bundle/build.ts'
import { installedManifest, repackInstall } from '../../bundle/repack.ts'
import { BUNDLED } from '../../own-files.ts'
import { BUNDLE_ARCHES, bundleTopDir, type BundleArch } from '../../../providers/bundle-manifest.ts'

export const help = `usage: meshd bundle [--arch x64|arm64] [--out FILE] [--cache-dir DIR] [--json]

Builds one archive (tar.gz) with everything a bare Linux host needs to run
meshd: the code built to JavaScript, better-sqlite3's prebuilt addon for that
architecture and the Node.js runtime for it. Unpacked anywhere, its bin/meshd
runs without npm or a checkout. Runs in a source checkout (esbuild builds
the code); a meshd that itself runs from a bundle repacks its own install
instead, which gives the bundle it came from (its own arch only).

  --arch        x64 or arm64 (default: this machine's)
  --out         the archive to write (default: ./meshd-<version>-linux-<arch>.tar.gz)
  --cache-dir   where a Node.js runtime for another architecture is kept once
                fetched with \`npm pack\` (default: ~/.cache/meshd/bundle)
  --json        the file, its size, sha256 and manifest as JSON

The archive has one top-level directory; unpack with
  tar -xzf FILE --strip-components=1 -C DIR
Its manifest (meshd-bundle.json: version, arch, Node.js version, a digest of
the contents) tells whether a host already has the same bundle.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('bundle', argv, {
    arch: { type: 'string' },
    out: { type: 'string' },
    'cache-dir': { type: 'string' }
  })
  const arch = values.arch ?? hostArch()
  if (arch === null) throw new UsageError(`bundle: this machine is ${process.arch}; pass --arch x64 or --arch arm64`)
  if (!(BUNDLE_ARCHES as readonly string[]).includes(arch)) throw new UsageError(`bundle: --arch: expected x64 or arm64, got ${JSON.stringify(arch)}`)
  const a = arch as BundleArch
  const out = values.out ?? `${bundleTopDir(MESHD_VERSION, a)}.tar.gz`
  const cacheDir = values['cache-dir'] ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'meshd', 'bundle')
  const started = Date.now()
  let built
  try {
    if (BUNDLED) {
      // No sources here: this meshd's own install is the bundle for its arch.
      const own = installedManifest(meshdRoot())
      if (own.arch !== a) throw new Error(`this meshd runs from a bundle for ${own.arch}, with no sources to build one for ${a}: run \`meshd bundle --arch ${a}\` in a source checkout`)
      process.stderr.write(`meshd bundle: repacking this meshd's own install (${meshdRoot()})\n`)
      built = await repackInstall(meshdRoot(), out)
    } else {
      built = await buildBundle({ root: meshdRoot(), arch: a, out, cacheDir, progress: (line) => { process.stderr.write(`meshd bundle: ${line}\n`) } })
    }
  } catch (err) {
    throw new CommandFailed(`bundle: ${(err as Error).message}`)
  }
  if (values.json) {
    printJson({ file: built.file, bytes: built.bytes, sha256: built.sha256, manifest: built.manifest })
  } else {
    process.stderr.write(`meshd bundle: done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
    process.stdout.write(`${built.file}\nsize ${(built.bytes / 1e6).toFixed(1)} MB (${built.bytes} bytes)\nsha256 ${built.sha256}\n` +
      `meshd ${built.manifest.version}, linux-${built.manifest.arch}, node ${built.manifest.node}, contents ${built.manifest.contents_sha256}\n`)
  }
  return 0
}
