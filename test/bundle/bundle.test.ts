/**
 * `meshd bundle` end to end: one bundle for this machine's arch, built once
 * through the real CLI, unpacked into a directory with no node_modules and
 * no checkout beside it, and run there with a PATH that has no Node 24
 * (/usr/bin's node, if any, is older): version, init, a real daemon whose
 * simulator answers a chat completion through the front door (the official
 * `openai` client), status.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { meshd } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { MeshdProcess } from '../../daemon/localmesh/meshd-process.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { BUNDLE_MANIFEST_FILE, contentsDigest, parseBundleManifest } from '../../providers/bundle-manifest.ts'
import { INLINE_MAX } from '../../daemon/http/body-parser.ts'

const REPO = join(import.meta.dirname, '../..')
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string, optionalDependencies: Record<string, string> }
const arch = process.arch === 'arm64' ? 'arm64' : 'x64'

const work = tempDir(t, 'meshd-bundle-build-')
const out = join(work, 'meshd.tar.gz')
const built = await meshd(['bundle', '--out', out, '--json', '--cache-dir', join(work, 'cache')], { timeoutMs: 240_000 })
if (built.code !== 0) throw new Error(`meshd bundle failed (${built.code}): ${built.stderr}`)
const report = JSON.parse(built.stdout) as { file: string, bytes: number, sha256: string, manifest: { arch: string, node: string, version: string, contents_sha256: string, files: number } }

// Unpacked where nothing of the checkout can be found: not under the repo, no node_modules above it.
const host = tempDir(t, 'meshd-bundle-host-')
const install = join(host, 'opt-meshd')
mkdirSync(install)
execFileSync('tar', ['-xzf', out, '--strip-components=1', '-C', install])
const bin = join(install, 'bin', 'meshd')
// No npm, no node_modules/.bin, no MESHD_NODE: the bundle must bring its own Node.
const env = { PATH: '/usr/bin:/bin', HOME: host, MESHD_NODE: undefined, NODE_OPTIONS: undefined, NODE_PATH: undefined, MESHD_CONFIG: undefined }

t.test('the archive is what it reports, and its manifest digests what is in it', async (t) => {
  t.equal(statSync(out).size, report.bytes)
  t.match(built.stderr, /building JavaScript with esbuild/)
  t.equal(execFileSync('sha256sum', [out], { encoding: 'utf8' }).split(' ')[0], report.sha256)
  const manifest = parseBundleManifest(readFileSync(join(install, BUNDLE_MANIFEST_FILE), 'utf8'), 'bundle')
  t.same(manifest, report.manifest)
  t.equal(manifest.arch, arch)
  t.equal(manifest.version, pkg.version)
  t.equal(manifest.node, pkg.optionalDependencies[`node-linux-${arch}`])
  // Recompute the digest from the unpacked files: the manifest describes this very bundle.
  const files: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name))
      else files.push(join(d, e.name).slice(install.length + 1))
    }
  }
  walk(install)
  const entries = files.filter((f) => f !== BUNDLE_MANIFEST_FILE).map((path) => ({
    path,
    executable: (statSync(join(install, path)).mode & 0o111) !== 0,
    sha256: execFileSync('sha256sum', [join(install, path)], { encoding: 'utf8' }).split(' ')[0]!
  }))
  t.equal(entries.length, manifest.files)
  t.equal(contentsDigest(entries), manifest.contents_sha256)
  // Nothing else: no TypeScript, only this arch's addon, no other package than the native one.
  t.same(files.filter((f) => f.endsWith('.ts')), [])
  t.same(readdirSync(join(install, 'node_modules')), ['better-sqlite3'])
  t.same(readdirSync(join(install, 'node_modules', 'better-sqlite3', 'prebuilds')), [`linux-${arch}.node`])
  t.ok(existsSync(join(install, 'runtime', 'bin', 'node')))
})

t.test('bin/meshd version runs on the bundled Node', async (t) => {
  const r = await meshd(['version', '--json'], { bin, env, cwd: host })
  t.equal(r.code, 0, r.stderr)
  const v = JSON.parse(r.stdout) as { meshd: string, node: string, libp2p: string }
  t.equal(v.meshd, pkg.version)
  t.equal(v.node, report.manifest.node)
  t.match(v.libp2p, /^\d+\.\d+\.\d+$/)
})

t.test('init, start with the simulator, a chat completion through the front door (one large enough for the parse worker), status', async (t) => {
  const config = join(host, 'meshd.yaml')
  const socket = join(host, 'admin.sock')
  const init = await meshd(['init', '--config', config, '--state-dir', join(host, 'state'), '--cluster', 'bundle', '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0'], { bin, env, cwd: host })
  t.equal(init.code, 0, init.stderr)
  // The admin socket in the temp dir (init's default is a system path), and the simulator as the replica.
  appendFileSync(config, `\nreplica:\n  models: [m]\n  slots: 2\n  command: sim\n`)
  writeFileSync(config, readFileSync(config, 'utf8').replace(/^ {2}socket: .*$/m, `  socket: ${socket}`))

  const daemon = new MeshdProcess({ name: 'bundled', configPath: config, socket, bin, env, startTimeoutMs: 60_000 })
  t.teardown(async () => { await daemon.stop(10_000) })
  const info = await daemon.start()
  t.equal(info.version, pkg.version)
  await waitFor(async () => {
    const s = await daemon.status()
    return s.members.find((m) => m.id === s.self)?.replica?.ready === true
  }, { timeoutMs: 60_000, what: 'the bundled simulator to be ready' })

  const client = new OpenAI({ baseURL: `http://${info.http}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 })
  const small = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 })
  t.ok(small.choices[0]?.message.content, 'the simulator answered')
  // Larger than INLINE_MAX: checked by the worker thread, which must load from the bundle's lib/.
  const big = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(INLINE_MAX * 2) }], max_tokens: 8 })
  t.ok(big.choices[0]?.message.content, 'a body checked by the parse worker was served')
  const cmdline = readFileSync(`/proc/${daemon.pid!}/cmdline`, 'utf8')
  t.match(cmdline, /lib\/meshd\.js/, 'the daemon runs the built JavaScript')

  const status = await meshd(['status', '--config', config], { bin, env, cwd: host })
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /bundled|\bm\b/)
})

t.test('a meshd running from the bundle repacks its own install into the very same bundle; another arch is refused with the command that builds it', async (t) => {
  const again = join(host, 'again.tar.gz')
  const r = await meshd(['bundle', '--out', again, '--json'], { bin, env, cwd: host, timeoutMs: 240_000 })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /repacking this meshd's own install/)
  const rep = JSON.parse(r.stdout) as { sha256: string, manifest: unknown }
  t.equal(rep.sha256, report.sha256, 'byte for byte the bundle it was unpacked from')
  t.same(rep.manifest, report.manifest)
  const other = arch === 'x64' ? 'arm64' : 'x64'
  const no = await meshd(['bundle', '--arch', other, '--out', join(host, 'other.tar.gz')], { bin, env, cwd: host })
  t.not(no.code, 0)
  t.match(no.stderr, new RegExp(`meshd bundle --arch ${other}`), `names the command: ${no.stderr.trim()}`)
  t.notOk(existsSync(join(host, 'other.tar.gz')))
})
