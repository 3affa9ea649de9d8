/**
 * A meshd that runs from a bundle has no sources to build one from, but it
 * is one: its own install (the bundle unpacked) archived again the way
 * build.ts archives (same order, owners, times, gzip level) gives the very
 * bundle it was unpacked from, byte for byte. So a leader running from a
 * bundle can install its own version on a pool host of its architecture.
 * The install is checked against its manifest first: an install changed
 * since (a file edited, one missing) is refused rather than passed on.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { BUNDLE_MANIFEST_FILE, bundleTopDir, contentsDigest, parseBundleManifest, type BundleFileEntry, type BundleManifest } from '../../providers/bundle-manifest.ts'
import { archive, listFiles, type BuiltBundle } from './build.ts'

/** The manifest of the bundle installed at `root` (its meshd-bundle.json). */
export function installedManifest (root: string): BundleManifest {
  const file = join(root, BUNDLE_MANIFEST_FILE)
  let text: string
  try { text = readFileSync(file, 'utf8') } catch (e) { throw new Error(`${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)} (is ${root} a bundle unpacked by \`tar --strip-components=1\`?)`) }
  return parseBundleManifest(text, file)
}

/** Archives the install at `root` into `out` as the bundle it came from. */
export async function repackInstall (root: string, out: string): Promise<BuiltBundle> {
  const manifest = installedManifest(root)
  const files = listFiles(root).filter((f) => f !== BUNDLE_MANIFEST_FILE)
  const entries = files.map((path): BundleFileEntry => {
    const full = join(root, path)
    return { path, executable: (statSync(full).mode & 0o111) !== 0, sha256: createHash('sha256').update(readFileSync(full)).digest('hex') }
  })
  const digest = contentsDigest(entries)
  if (digest !== manifest.contents_sha256 || entries.length !== manifest.files) {
    throw new Error(`${root} is not the bundle its ${BUNDLE_MANIFEST_FILE} describes (${entries.length} files, contents ${digest.slice(0, 12)}; the manifest says ${manifest.files} files, ${manifest.contents_sha256.slice(0, 12)}): changed since it was unpacked, so it is not passed on`)
  }
  const target = resolve(out)
  mkdirSync(dirname(target), { recursive: true })
  const { bytes, sha256 } = await archive(root, [BUNDLE_MANIFEST_FILE, ...files], target, bundleTopDir(manifest.version, manifest.arch))
  return { file: target, bytes, sha256, manifest }
}
