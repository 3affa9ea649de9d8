/**
 * The manifest inside a bundle made by `meshd bundle`: which meshd, for which
 * machine, with which Node, and one digest of everything else in it. A
 * provider that installs bundles on hosts (ssh) reads the manifest of the
 * bundle it holds and the one installed on a host, and uploads only when they
 * differ (`needsUpload`). Pure: parsing, the digest and the decision; reading
 * files is the caller's.
 *
 * The archive (tar.gz) has one top-level directory, `meshd-<version>-linux-<arch>/`;
 * unpack it with `tar -xzf FILE --strip-components=1 -C DIR`. The manifest is
 * its first entry, `<top>/meshd-bundle.json`, and sits at DIR/meshd-bundle.json
 * once unpacked. Layout below the top: bin/meshd (the launcher), lib/ (the
 * code built to JavaScript), runtime/bin/node, node_modules/ (native addons
 * only), systemd/, docs/, package.json.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'

export const BUNDLE_MANIFEST_FILE = 'meshd-bundle.json'
export const BUNDLE_MANIFEST_VERSION = 1

export const BUNDLE_ARCHES = ['x64', 'arm64'] as const
export type BundleArch = typeof BUNDLE_ARCHES[number]

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits (sha256)')

export const bundleManifestSchema = z.object({
  v: z.literal(BUNDLE_MANIFEST_VERSION),
  name: z.literal('meshd'),
  /** meshd's version (package.json). */
  version: z.string().min(1),
  platform: z.literal('linux'),
  arch: z.enum(BUNDLE_ARCHES),
  /** The Node.js in runtime/bin/node. */
  node: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected a Node.js version like 24.21.0'),
  /** `contentsDigest` of every file in the bundle but this manifest. */
  contents_sha256: sha256Hex,
  files: z.number().int().positive()
}).strict()

export type BundleManifest = z.infer<typeof bundleManifestSchema>

/** One file of a bundle as the digest sees it: its path below the top directory, whether it is executable, its sha256. */
export interface BundleFileEntry {
  path: string
  executable: boolean
  sha256: string
}

/**
 * The digest of a bundle's contents: sha256 over one line per file, sorted by
 * path, `<sha256> <x|-> <path>\n`. The executable bit counts (a launcher that
 * lost it is a broken install); owners and times do not, so two builds of the
 * same sources give the same digest.
 */
export function contentsDigest (entries: readonly BundleFileEntry[]): string {
  const h = createHash('sha256')
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`${e.sha256} ${e.executable ? 'x' : '-'} ${e.path}\n`)
  }
  return h.digest('hex')
}

/** A manifest from its text; the error names `where` (a local file, or host:path) and the field. */
export function parseBundleManifest (text: string, where: string): BundleManifest {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new Error(`${where}: not JSON (${(err as Error).message})`)
  }
  const r = bundleManifestSchema.safeParse(raw)
  if (!r.success) {
    const i = r.error.issues[0]!
    throw new Error(`${where}: ${i.path.length > 0 ? i.path.join('.') : '(file)'}: ${i.message}`)
  }
  return r.data
}

/** The bundle architecture for `uname -m`'s answer, or null for a machine meshd has no bundle for. */
export function bundleArchFor (machine: string): BundleArch | null {
  switch (machine.trim()) {
    case 'x86_64': case 'amd64': return 'x64'
    case 'aarch64': case 'arm64': return 'arm64'
    default: return null
  }
}

/**
 * Whether a host needs `local` uploaded: nothing installed (null), or an
 * install whose contents differ. Same contents means same version, arch and
 * Node too, since all of them are files the digest covers.
 */
export function needsUpload (installed: BundleManifest | null, local: BundleManifest): boolean {
  return installed === null || installed.contents_sha256 !== local.contents_sha256
}

/** The archive's top-level directory for a bundle of this version and arch. */
export function bundleTopDir (version: string, arch: BundleArch): string {
  return `meshd-${version}-linux-${arch}`
}
