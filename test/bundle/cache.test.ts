/**
 * The leader's bundle cache (daemon/bundle/cache.ts) with a stand-in source
 * (a small bundle with a real manifest): concurrent launches share one
 * making, a restart reuses the file, a damaged file or one whose sha256 was
 * never recorded (a crash mid-way) is made again, other sources' files and
 * interrupted builds' leftovers go, a failure is not remembered.
 */
import t from 'tap'
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BundleCache, type BundleSource } from '../../daemon/bundle/cache.ts'
import { tempDir } from '../helpers/tmp.ts'
import { standInBundle } from '../helpers/ssh-pool.ts'
import { readBundleFileManifest } from '../../providers/ssh/bundle-file.ts'

function source (root: string, inputs: string, made: string[], opts: { fail?: () => boolean } = {}): (arch: 'x64' | 'arm64') => BundleSource {
  const bundle = standInBundle(root, `src-${inputs.slice(0, 4)}`)
  return () => ({
    inputs,
    make: async (out, progress) => {
      made.push(out)
      progress('making')
      // A build takes a while: concurrent callers must still share it.
      await new Promise((resolve) => setTimeout(resolve, 50))
      if (opts.fail?.() === true) throw new Error('no esbuild here')
      copyFileSync(bundle, `${out}.tmp-1`)
      renameSync(`${out}.tmp-1`, out)
    }
  })
}

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)

t.test('one making for concurrent launches; a restart reuses the file', async (t) => {
  const root = tempDir(t)
  const dir = join(root, 'bundles')
  const made: string[] = []
  const logs: string[] = []
  const c = new BundleCache({ dir, source: source(root, A, made), version: '1.2.3', log: (m) => logs.push(m) })
  const files = await Promise.all([c.bundleFor('x64'), c.bundleFor('x64'), c.bundleFor('x64')])
  t.equal(made.length, 1, 'made once')
  t.same(new Set(files).size, 1, 'every caller gets the same file')
  t.equal(files[0], join(dir, `meshd-1.2.3-linux-x64-${A.slice(0, 16)}.tar.gz`), 'named by version, arch and the inputs digest')
  t.ok(existsSync(`${files[0]}.sha256`), 'its sha256 recorded beside it')
  t.ok(logs.some((l) => l.includes('making')) && logs.some((l) => l.includes('ready in')), `progress logged: ${logs.join(' | ')}`)
  t.equal((await readBundleFileManifest(files[0]!)).name, 'meshd')

  const again = new BundleCache({ dir, source: source(root, A, made), version: '1.2.3' })
  t.equal(await again.bundleFor('x64'), files[0], 'after a restart: the same file')
  t.equal(made.length, 1, 'not made again')
})

t.test('a damaged file, or one whose sha256 was never recorded, is made again', async (t) => {
  const root = tempDir(t)
  const dir = join(root, 'bundles')
  const made: string[] = []
  const file = await new BundleCache({ dir, source: source(root, A, made) }).bundleFor('x64')
  const good = readFileSync(file)
  // Same length, other bytes (a disk error, a hand edit): the recorded sha256 no longer matches.
  const bad = Buffer.from(good)
  bad[bad.length - 10] = bad[bad.length - 10]! ^ 0xff
  writeFileSync(file, bad)
  const logs: string[] = []
  t.equal(await new BundleCache({ dir, source: source(root, A, made), log: (m) => logs.push(m) }).bundleFor('x64'), file)
  t.equal(made.length, 2, 'a damaged file is made again')
  t.ok(logs.some((l) => /damaged/.test(l)), 'and says why')
  t.same(readFileSync(file), good, 'whole again')

  // A crash after the rename but before the sha256 was recorded: not trusted.
  writeFileSync(file, good.subarray(0, 100))
  t.ok(existsSync(`${file}.sha256`))
  rmSync(`${file}.sha256`)
  await new BundleCache({ dir, source: source(root, A, made) }).bundleFor('x64')
  t.equal(made.length, 3, 'a file without its recorded sha256 is made again')
  t.same(readFileSync(file), good)
})

t.test('old files of the arch and leftovers of interrupted builds go; the other arch stays', async (t) => {
  const root = tempDir(t)
  const dir = join(root, 'bundles')
  const made: string[] = []
  const arm = await new BundleCache({ dir, source: source(root, B, made) }).bundleFor('arm64')
  const old = await new BundleCache({ dir, source: source(root, B, made) }).bundleFor('x64')
  writeFileSync(join(dir, `meshd-0.0.9-linux-x64-${'c'.repeat(16)}.tar.gz.tmp-4242`), 'half')
  const now = await new BundleCache({ dir, source: source(root, A, made) }).bundleFor('x64')
  t.not(now, old, 'other sources: another file')
  t.same(readdirSync(dir).filter((f) => f.includes('-x64-')).sort(), [now, `${now}.sha256`].map((f) => f.slice(dir.length + 1)).sort(), 'only the current x64 bundle is left')
  t.ok(existsSync(arm), 'the arm64 one stays')
})

t.test('a failed making is not remembered: the next launch tries again', async (t) => {
  const root = tempDir(t)
  const made: string[] = []
  let fail = true
  const c = new BundleCache({ dir: join(root, 'bundles'), source: source(root, A, made, { fail: () => fail }) })
  await t.rejects(c.bundleFor('x64'), /no esbuild here/)
  fail = false
  t.ok(existsSync(await c.bundleFor('x64')), 'made on the next try')
  t.equal(made.length, 2)
})
