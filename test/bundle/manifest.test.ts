/** The bundle manifest (providers/bundle-manifest.ts) and the ELF check (daemon/bundle/elf.ts): pure, table-tested. */
import t from 'tap'
import fc from 'fast-check'
import { bundleArchFor, contentsDigest, needsUpload, parseBundleManifest, type BundleManifest } from '../../providers/bundle-manifest.ts'
import { elfArch } from '../../daemon/bundle/elf.ts'

const H = (c: string): string => c.repeat(64)
const manifest: BundleManifest = { v: 1, name: 'meshd', version: '0.1.0', platform: 'linux', arch: 'x64', node: '24.21.0', contents_sha256: H('a'), files: 3 }

t.test('the digest ignores order, and sees every path, content and executable bit', async (t) => {
  const entries = [{ path: 'bin/meshd', executable: true, sha256: H('1') }, { path: 'lib/meshd.js', executable: false, sha256: H('2') }]
  t.equal(contentsDigest(entries), contentsDigest([...entries].reverse()))
  t.not(contentsDigest(entries), contentsDigest([{ ...entries[0]!, executable: false }, entries[1]!]))
  t.not(contentsDigest(entries), contentsDigest([entries[0]!, { ...entries[1]!, sha256: H('3') }]))
  t.not(contentsDigest(entries), contentsDigest([entries[0]!, { ...entries[1]!, path: 'lib/other.js' }]))
  t.not(contentsDigest(entries), contentsDigest(entries.slice(0, 1)))
  // Any permutation gives the same digest.
  fc.assert(fc.property(fc.uniqueArray(fc.record({ path: fc.string({ minLength: 1 }), executable: fc.boolean(), sha256: fc.constantFrom(H('1'), H('2')) }), { selector: (e) => e.path }), (es) => {
    return contentsDigest(es) === contentsDigest(fc.sample(fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length }), 1)[0]!)
  }))
})

t.test('parse: a valid manifest; errors name where and the field', async (t) => {
  t.same(parseBundleManifest(JSON.stringify(manifest), 'x'), manifest)
  t.throws(() => parseBundleManifest('{', 'host1:/opt/meshd/meshd-bundle.json'), /^host1:\/opt\/meshd\/meshd-bundle.json: not JSON/)
  t.throws(() => parseBundleManifest(JSON.stringify({ ...manifest, arch: 'riscv64' }), 'f'), /^f: arch: /)
  t.throws(() => parseBundleManifest(JSON.stringify({ ...manifest, contents_sha256: 'abc' }), 'f'), /f: contents_sha256: expected 64 lowercase hex/)
  t.throws(() => parseBundleManifest(JSON.stringify({ ...manifest, v: 2 }), 'f'), /f: v: /)
  t.throws(() => parseBundleManifest(JSON.stringify({ ...manifest, extra: 1 }), 'f'), /f: /)
})

t.test('needsUpload: nothing installed or other contents; the same contents never', async (t) => {
  t.equal(needsUpload(null, manifest), true)
  t.equal(needsUpload({ ...manifest, contents_sha256: H('b') }, manifest), true)
  t.equal(needsUpload({ ...manifest }, manifest), false)
})

t.test('uname -m to a bundle arch', async (t) => {
  t.equal(bundleArchFor('x86_64\n'), 'x64')
  t.equal(bundleArchFor('aarch64'), 'arm64')
  t.equal(bundleArchFor('arm64'), 'arm64')
  t.equal(bundleArchFor('armv7l'), null)
})

t.test('ELF headers: x64, arm64, another machine, not ELF', async (t) => {
  const header = (machine: number): Uint8Array => {
    const b = new Uint8Array(20)
    b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1])
    b[18] = machine & 0xff
    b[19] = machine >> 8
    return b
  }
  t.equal(elfArch(header(62)), 'x64')
  t.equal(elfArch(header(183)), 'arm64')
  t.equal(elfArch(header(40)), 'other')
  t.equal(elfArch(new TextEncoder().encode('#!/bin/sh\necho hello world')), null)
  t.equal(elfArch(header(62).subarray(0, 10)), null)
})
