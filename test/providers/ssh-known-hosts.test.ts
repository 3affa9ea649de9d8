/**
 * providers/ssh/known-hosts.ts: plain and hashed entries, ports, wildcards,
 * negation, revoked keys, a changed key; hashed lines made by OpenSSH's own
 * `ssh-keygen -H` and fingerprints compared with `ssh-keygen -l`.
 */
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { tempDir } from '../helpers/tmp.ts'
import { checkHostKey, entryMatches, fingerprint, hostName, knownHostsLine, parseKnownHosts } from '../../providers/ssh/known-hosts.ts'

const K1 = 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'
const K2 = 'AAAAC3NzaC1lZDI1NTE5AAAAIB3hzZ4cZc3X3qgQv2n2n0q9nSxJ4V6x3Z7Qp2YgWm9b'

t.test('plain entries: exact name, port form, lists, wildcards, negation', async (t) => {
  const { entries, bad } = parseKnownHosts([
    '# a comment',
    '',
    `10.0.1.100 ssh-ed25519 ${K1}`,
    `[10.0.1.101]:2222,other ssh-ed25519 ${K1}`,
    `10.0.2.*,!10.0.2.9 ssh-ed25519 ${K1}`,
    'garbage'
  ].join('\n'))
  t.equal(entries.length, 3)
  t.same(bad, [{ line: 6, why: 'expected "<hosts> <key type> <base64 key>"' }])
  t.equal(checkHostKey(entries, '10.0.1.100', 22, 'ssh-ed25519', K1).kind, 'known')
  t.equal(checkHostKey(entries, '10.0.1.100', 2222, 'ssh-ed25519', K1).kind, 'unknown', 'another port is another host')
  t.equal(checkHostKey(entries, '10.0.1.101', 2222, 'ssh-ed25519', K1).kind, 'known')
  t.equal(checkHostKey(entries, '10.0.1.101', 22, 'ssh-ed25519', K1).kind, 'unknown')
  t.equal(checkHostKey(entries, '10.0.2.5', 22, 'ssh-ed25519', K1).kind, 'known', 'wildcard')
  t.equal(checkHostKey(entries, '10.0.2.9', 22, 'ssh-ed25519', K1).kind, 'unknown', 'negated')
  t.equal(hostName('h', 22), 'h')
  t.equal(hostName('h', 2200), '[h]:2200')
})

t.test('a listed host offering another key has CHANGED; a revoked key is refused', async (t) => {
  const { entries } = parseKnownHosts(`10.0.1.100 ssh-ed25519 ${K1}\n@revoked * ssh-ed25519 ${K2}\n@cert-authority * ssh-ed25519 ${K1}\n`)
  const v = checkHostKey(entries, '10.0.1.100', 22, 'ssh-ed25519', K2)
  t.equal(v.kind, 'revoked', 'revoked beats anything')
  const { entries: e2 } = parseKnownHosts(`10.0.1.100 ssh-ed25519 ${K1}\n`)
  const c = checkHostKey(e2, '10.0.1.100', 22, 'ssh-ed25519', K2)
  t.equal(c.kind, 'changed')
  if (c.kind === 'changed') { t.same(c.lines, [1]); t.same(c.known, [fingerprint(K1)]) }
  t.equal(checkHostKey(e2, '10.0.1.100', 22, 'ecdsa-sha2-nistp256', K2).kind, 'changed', 'another key type is changed too, never silently new')
  const ca = parseKnownHosts(`@cert-authority 10.0.1.100 ssh-ed25519 ${K1}\n`).entries
  t.equal(checkHostKey(ca, '10.0.1.100', 22, 'ssh-ed25519', K1).kind, 'unknown', 'a CA line does not vouch for a plain key')
})

const keygen = spawnSync('ssh-keygen', ['-?']).error === undefined

t.test('hashed entries written by ssh-keygen -H, fingerprints as ssh-keygen -l', { skip: keygen ? false : 'needs ssh-keygen (openssh-client)' }, async (t) => {
  const dir = tempDir(t)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')])
  const pub = readFileSync(join(dir, 'k.pub'), 'utf8').trim().split(/\s+/)
  const blob = Buffer.from(pub[1]!, 'base64')
  const kh = join(dir, 'known_hosts')
  writeFileSync(kh, knownHostsLine('127.0.0.1', 2222, blob) + knownHostsLine('example.test', 22, blob))
  execFileSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'ignore' })
  const text = readFileSync(kh, 'utf8')
  t.match(text, /^\|1\|/, 'hashed by OpenSSH')
  t.notMatch(text, /127\.0\.0\.1|example/, 'no names left')
  const { entries } = parseKnownHosts(text)
  t.equal(checkHostKey(entries, '127.0.0.1', 2222, pub[0]!, pub[1]!).kind, 'known', 'hashed [host]:port')
  t.equal(checkHostKey(entries, 'example.test', 22, pub[0]!, pub[1]!).kind, 'known', 'hashed plain name')
  t.equal(checkHostKey(entries, '127.0.0.1', 22, pub[0]!, pub[1]!).kind, 'unknown', 'hashes match exact names only')
  // ssh-keygen -F finds what we wrote unhashed (before -H): our line is OpenSSH's format.
  const plain = join(dir, 'plain')
  writeFileSync(plain, knownHostsLine('127.0.0.1', 2222, blob))
  t.equal(spawnSync('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', plain]).status, 0, 'ssh-keygen -F finds our line')
  const l = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'k.pub')]).toString()
  t.ok(l.includes(fingerprint(blob)), `fingerprint as ssh shows it (${fingerprint(blob)})`)
})

t.test('property: a name never matches a pattern list that negates it', async (t) => {
  fc.assert(fc.property(fc.stringMatching(/^[a-z0-9.]{1,12}$/), fc.array(fc.stringMatching(/^[a-z0-9.*?]{1,8}$/), { maxLength: 4 }), (name, pats) => {
    return !entryMatches([...pats, `!${name}`, '*'].join(','), name)
  }))
  t.pass('no counterexample')
})
