/**
 * OpenSSH `known_hosts`, pure: parse the text, decide what a host's key is
 * (known / unknown / CHANGED / revoked), render a line to add, and the
 * `SHA256:…` fingerprint ssh shows. No I/O here: the provider reads the file
 * and `meshd pool trust` appends to it.
 *
 * What OpenSSH's sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" says, kept:
 * - host patterns are comma separated, `*` and `?` wildcards, `!` negates
 *   (a negated match makes the line not apply even if another pattern
 *   matches), a non-standard port is written `[host]:port`;
 * - hashed names `|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>`
 *   (HashKnownHosts yes) match only the exact name;
 * - `@revoked` marks a key that is never accepted; `@cert-authority` lines
 *   are for certificates, which meshd does not use: skipped;
 * - a host may have several keys (one per type, or rotated): any match is
 *   known. A host listed with keys, none of which is the one offered, has
 *   CHANGED (ssh's "REMOTE HOST IDENTIFICATION HAS CHANGED"), whatever the
 *   key type: a reinstalled host or a man in the middle, never accepted
 *   silently.
 */
import { createHash, createHmac } from 'node:crypto'

export interface KnownHostsEntry {
  /** 1-based line number, for messages. */
  line: number
  marker: 'revoked' | 'cert-authority' | null
  /** The host field as written (patterns, or one hashed name). */
  hosts: string
  keyType: string
  /** The key blob, base64 as written. */
  key: string
}

export interface ParseResult {
  entries: KnownHostsEntry[]
  /** Lines that are neither comments nor entries: reported, not fatal (ssh skips them too). */
  bad: Array<{ line: number, why: string }>
}

export function parseKnownHosts (text: string): ParseResult {
  const entries: KnownHostsEntry[] = []
  const bad: ParseResult['bad'] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const s = raw.trim()
    if (s === '' || s.startsWith('#')) return
    const fields = s.split(/\s+/)
    let marker: KnownHostsEntry['marker'] = null
    if (fields[0]!.startsWith('@')) {
      const m = fields.shift()!
      if (m === '@revoked') marker = 'revoked'
      else if (m === '@cert-authority') marker = 'cert-authority'
      else { bad.push({ line: i + 1, why: `unknown marker ${m}` }); return }
    }
    if (fields.length < 3) { bad.push({ line: i + 1, why: 'expected "<hosts> <key type> <base64 key>"' }); return }
    const [hosts, keyType, key] = fields as [string, string, string]
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) { bad.push({ line: i + 1, why: 'the key is not base64' }); return }
    entries.push({ line: i + 1, marker, hosts, keyType, key })
  })
  return { entries, bad }
}

/** The name ssh looks a host up by: `host` on port 22, `[host]:port` otherwise. */
export function hostName (host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** A glob of OpenSSH's match_pattern: `*` any run, `?` one character, case-insensitive. */
export function globMatch (pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i')
  return re.test(name)
}

function hashedMatch (field: string, name: string): boolean {
  const parts = field.split('|')
  // '', '1', salt, hash
  if (parts.length !== 4 || parts[1] !== '1') return false
  const salt = Buffer.from(parts[2]!, 'base64')
  const want = parts[3]!
  return createHmac('sha1', salt).update(name).digest('base64') === want
}

/** Whether the entry's host field names `name` (a `hostName()` result). */
export function entryMatches (hosts: string, name: string): boolean {
  if (hosts.startsWith('|')) return hashedMatch(hosts, name)
  let matched = false
  for (const p of hosts.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false
    } else if (globMatch(p, name)) {
      matched = true
    }
  }
  return matched
}

export type HostKeyVerdict =
  | { kind: 'known', line: number }
  | { kind: 'unknown' }
  /** The host is listed, but with other keys: `lines` are where. */
  | { kind: 'changed', lines: number[], known: string[] }
  | { kind: 'revoked', line: number }

/** What the file says of `keyType`/`key` (base64 blob) offered by host:port. */
export function checkHostKey (entries: KnownHostsEntry[], host: string, port: number, keyType: string, key: string): HostKeyVerdict {
  const name = hostName(host, port)
  const mine = entries.filter((e) => e.marker !== 'cert-authority' && entryMatches(e.hosts, name))
  const revoked = mine.find((e) => e.marker === 'revoked' && e.key === key)
  if (revoked !== undefined) return { kind: 'revoked', line: revoked.line }
  const same = mine.find((e) => e.marker === null && e.key === key && e.keyType === keyType)
  if (same !== undefined) return { kind: 'known', line: same.line }
  const others = mine.filter((e) => e.marker === null)
  if (others.length > 0) return { kind: 'changed', lines: others.map((e) => e.line), known: others.map((e) => fingerprint(e.key)) }
  return { kind: 'unknown' }
}

/** ssh's `SHA256:<base64, no padding>` fingerprint of a key blob (base64 or raw). */
export function fingerprint (key: string | Buffer): string {
  const blob = typeof key === 'string' ? Buffer.from(key, 'base64') : key
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

/** The key type named inside an SSH public key blob (its first string). */
export function blobKeyType (blob: Buffer): string {
  if (blob.length < 4) return ''
  const n = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + n).toString('latin1')
}

/** A line to append for host:port, plain (not hashed: readable, and `meshd pool trust` says what it adds). */
export function knownHostsLine (host: string, port: number, blob: Buffer): string {
  return `${hostName(host, port)} ${blobKeyType(blob)} ${blob.toString('base64')}\n`
}
