/**
 * `meshd bundle`: one tar.gz with everything a bare Linux host needs to run
 * meshd, and nothing else (layout: providers/bundle-manifest.ts):
 *
 * - the code built to plain JavaScript by esbuild, one file per entry meshd
 *   runs (the CLI/daemon, the simulator process, the body-parser thread) plus
 *   shared chunks, all in lib/ (daemon/own-files.ts finds them there);
 * - the dependencies esbuild cannot inline: better-sqlite3 (a native addon)
 *   with only its prebuilt binary for linux-<arch>;
 * - Node.js for that arch (runtime/), found by bin/meshd;
 * - the files meshd reads from its own root: package.json (the version),
 *   systemd/meshd.service (install-service), the docs init's config names.
 *
 * Built in a staging directory, archived with fixed owners and times in a
 * fixed order (the manifest first), so the same sources give the same bytes.
 * Builds from a source checkout (esbuild is one of meshd's dependencies: a
 * leader builds bundles on first need, cache.ts).
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { BUNDLE_MANIFEST_FILE, BUNDLE_MANIFEST_VERSION, bundleTopDir, contentsDigest, type BundleArch, type BundleFileEntry, type BundleManifest } from '../../providers/bundle-manifest.ts'
import { BUNDLED, ENTRIES } from '../own-files.ts'
import { assertElfArch } from './elf.ts'
import { nodeRuntime, pinnedNodeVersion } from './runtime.ts'

/** Packages left out of the JavaScript and shipped as files: native addons. */
const NATIVE_PACKAGES = ['better-sqlite3']
/** Native parts of dependencies that are optional at run time (ssh2 falls back to JavaScript crypto). */
const OPTIONAL_NATIVE = ['cpu-features', '*.node']
/** Files meshd reads from its root at run time, copied as they are. */
const ROOT_FILES = ['bin/meshd', 'systemd/meshd.service', 'docs/configuration.md', 'daemon/config/example.yaml']

export interface BuildOptions {
  /** The checkout to build from. */
  root: string
  arch: BundleArch
  /** Where the archive goes. */
  out: string
  /** Where fetched runtimes are kept between builds. */
  cacheDir: string
  progress?: (line: string) => void
}

export interface BuiltBundle {
  file: string
  bytes: number
  sha256: string
  manifest: BundleManifest
}

export async function buildBundle (opts: BuildOptions): Promise<BuiltBundle> {
  const progress = opts.progress ?? (() => {})
  const root = resolve(opts.root)
  const { arch } = opts
  if (BUNDLED) throw new Error('this meshd is itself a bundle (no sources to build from); run `meshd bundle` in a source checkout')
  const pkgFile = join(root, 'package.json')
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version: string, optionalDependencies?: Record<string, string> }
  const nodeVersion = pinnedNodeVersion(pkg, arch, pkgFile)

  // Everything that can be missing is checked before anything is built.
  const sqlite = join(root, 'node_modules', 'better-sqlite3')
  const addon = join(sqlite, 'prebuilds', `linux-${arch}.node`)
  try { statSync(addon) } catch {
    throw new Error(`better-sqlite3 has no prebuilt addon for linux-${arch} (expected ${addon}); a bundle without it could not open its database, so none was built`)
  }
  assertElfArch(addon, arch, 'the better-sqlite3 addon')
  const runtime = await nodeRuntime({ root, arch, version: nodeVersion, cacheDir: opts.cacheDir, progress })

  const staging = mkdtempSync(join(tmpdir(), 'meshd-bundle-'))
  try {
    const topName = bundleTopDir(pkg.version, arch)
    const top = join(staging, topName)
    progress(`building JavaScript with esbuild (${Object.keys(ENTRIES).join(', ')})`)
    await buildJavaScript(root, join(top, 'lib'))

    progress(`adding Node.js ${runtime.version} for linux-${arch}, better-sqlite3 (linux-${arch}), launcher and unit`)
    copy(join(runtime.dir, 'bin', 'node'), join(top, 'runtime', 'bin', 'node'), 0o755)
    copy(join(runtime.dir, 'LICENSE'), join(top, 'runtime', 'LICENSE'))
    for (const f of ['package.json', 'LICENSE']) copy(join(sqlite, f), join(top, 'node_modules', 'better-sqlite3', f))
    copyTree(join(sqlite, 'lib'), join(top, 'node_modules', 'better-sqlite3', 'lib'))
    copy(addon, join(top, 'node_modules', 'better-sqlite3', 'prebuilds', `linux-${arch}.node`))
    for (const f of ROOT_FILES) copy(join(root, f), join(top, f), f.startsWith('bin/') ? 0o755 : 0o644)
    // The root package.json: the version meshd reports, and "type": "module" for lib/*.js.
    writeFileSync(join(top, 'package.json'), JSON.stringify({ name: 'meshd', version: pkg.version, private: true, type: 'module' }, null, 2) + '\n')

    const files = listFiles(top)
    const entries = files.map((path): BundleFileEntry => {
      const full = join(top, path)
      return { path, executable: (statSync(full).mode & 0o111) !== 0, sha256: createHash('sha256').update(readFileSync(full)).digest('hex') }
    })
    const manifest: BundleManifest = {
      v: BUNDLE_MANIFEST_VERSION,
      name: 'meshd',
      version: pkg.version,
      platform: 'linux',
      arch,
      node: runtime.version,
      contents_sha256: contentsDigest(entries),
      files: entries.length
    }
    writeFileSync(join(top, BUNDLE_MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')

    progress(`archiving ${entries.length + 1} files`)
    const out = resolve(opts.out)
    mkdirSync(dirname(out), { recursive: true })
    const { bytes, sha256 } = await archive(staging, [BUNDLE_MANIFEST_FILE, ...files].map((f) => `${topName}/${f}`), out)
    return { file: out, bytes, sha256, manifest }
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}

async function buildJavaScript (root: string, outdir: string): Promise<void> {
  let esbuild: typeof import('esbuild')
  try {
    esbuild = await import('esbuild')
  } catch {
    throw new Error(`esbuild is not installed in ${root}: bundles are built from a source checkout with its dependencies (run \`npm install\` there)`)
  }
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, src]) => [name, join(root, src)])),
    outdir,
    bundle: true,
    // Chunks shared by the entries, loaded when a command needs them (the CLI imports commands lazily).
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    external: [...NATIVE_PACKAGES, ...OPTIONAL_NATIVE, 'esbuild'],
    // Smaller files parse faster (`meshd status`); identifiers stay, so stack traces still read.
    minifyWhitespace: true,
    minifySyntax: true,
    // CommonJS dependencies call require() and read __dirname / __filename (ssh2's
    // emscripten-built poly1305 does, at load); an ES module has none of them.
    banner: {
      js: "import { createRequire as __meshdCreateRequire } from 'node:module'; import { fileURLToPath as __meshdFileURLToPath } from 'node:url'; import { dirname as __meshdDirname } from 'node:path'; " +
        'const require = __meshdCreateRequire(import.meta.url); const __filename = __meshdFileURLToPath(import.meta.url); const __dirname = __meshdDirname(__filename);'
    },
    legalComments: 'linked',
    logLevel: 'silent'
  })
  const hard = result.warnings.filter((w) => !/will not be bundled|require call/.test(w.text))
  if (hard.length > 0) throw new Error(`esbuild: ${hard.map((w) => `${w.location?.file ?? ''}: ${w.text}`).join('; ')}`)
}

function copy (from: string, to: string, mode = 0o644): void {
  mkdirSync(dirname(to), { recursive: true })
  copyFileSync(from, to)
  chmodSync(to, mode)
}

function copyTree (from: string, to: string): void {
  for (const f of listFiles(from)) copy(join(from, f), join(to, f))
}

/** Every regular file below `dir`, relative, sorted (a fixed order for a reproducible archive). */
export function listFiles (dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name)
      if (e.isDirectory()) walk(full)
      else if (e.isFile()) out.push(relative(dir, full))
    }
  }
  walk(dir)
  return out.sort()
}

/**
 * tar (owners and times fixed, in the order given) through gzip into `out`,
 * written whole or not at all. `prefix` is put before every name in the
 * archive (repacking an install whose directory has another name).
 */
export async function archive (cwd: string, names: string[], out: string, prefix?: string): Promise<{ bytes: number, sha256: string }> {
  const tmp = `${out}.tmp-${process.pid}`
  const transform = prefix === undefined ? [] : [`--transform=s,^,${prefix}/,`]
  const tar = spawn('tar', ['--create', '--no-recursion', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--format=ustar', ...transform, '--files-from=-', '--file=-'],
    { cwd, stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  tar.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<number | null>((res, rej) => { tar.once('error', rej); tar.once('close', res) })
  tar.stdin.end(names.join('\n') + '\n')
  const hash = createHash('sha256')
  let bytes = 0
  try {
    await pipeline(tar.stdout, createGzip({ level: 9 }), async function * (chunks: AsyncIterable<Buffer>) {
      for await (const c of chunks) { hash.update(c); bytes += c.length; yield c }
    }, createWriteStream(tmp))
    const code = await exited
    if (code !== 0) throw new Error(`tar exited with ${code}: ${stderr.trim()}`)
    renameSync(tmp, out)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
  return { bytes, sha256: hash.digest('hex') }
}

/** Folders of a checkout whose TypeScript goes into a bundle (the rest: test/, bench/, contrib/). */
const CODE_DIRS = ['daemon', 'mesh', 'providers']

/**
 * A digest of what a bundle for `arch` is built from in the checkout at
 * `root`: every .ts file of the code folders, the root files copied in,
 * package.json (version, pinned Node) and package-lock.json (the exact
 * dependencies esbuild inlines and better-sqlite3's version). Two checkouts
 * with the same digest build the same bundle; a cache keyed by it is never
 * stale. Reading a few hundred small files takes some milliseconds.
 */
export function sourceDigest (root: string, arch: BundleArch): string {
  const files: string[] = []
  for (const d of CODE_DIRS) files.push(...listFiles(join(root, d)).filter((f) => f.endsWith('.ts')).map((f) => join(d, f)))
  files.push(...ROOT_FILES, 'package.json')
  try { statSync(join(root, 'package-lock.json')); files.push('package-lock.json') } catch {}
  const h = createHash('sha256').update(`meshd-bundle-sources v1 ${arch}\n`)
  for (const f of files.sort()) h.update(`${createHash('sha256').update(readFileSync(join(root, f))).digest('hex')} ${f}\n`)
  return h.digest('hex')
}

/** This machine's bundle arch, or null. */
export function hostArch (): BundleArch | null {
  return process.arch === 'x64' || process.arch === 'arm64' ? process.arch : null
}
