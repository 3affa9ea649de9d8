/**
 * Checks of listen and peer addresses that a pattern cannot make: a port
 * within 0–65535, an IPv4 address whose parts are bytes. Without them a typo
 * such as `:99999` or `/ip4/999.1.1.1` passes the config and fails deep in
 * node:net or libp2p with a message that names neither the file nor the key.
 * Pure; each returns the problem in words, or null.
 */
import { isIPv4, isIPv6 } from 'node:net'

const MAX_PORT = 65535

function portProblem (text: string): string | null {
  if (!/^\d{1,5}$/.test(text)) return `port "${text}" is not a number`
  const port = Number(text)
  return port > MAX_PORT ? `port ${port} is above ${MAX_PORT}` : null
}

/** `host:port` as http.listen takes it; the host may be a name, an IPv4 address or [IPv6]. */
export function hostPortProblem (value: string): string | null {
  const at = value.lastIndexOf(':')
  if (at < 0) return null // the pattern reports it
  const host = value.slice(0, at)
  const port = portProblem(value.slice(at + 1))
  if (port !== null) return port
  if (host.startsWith('[')) return isIPv6(host.slice(1, -1)) ? null : `"${host}" is not an IPv6 address`
  // All digits and dots: meant as an IPv4 address (no host name looks like that).
  if (/^[\d.]+$/.test(host) && !isIPv4(host)) return `"${host}" is not an IPv4 address`
  return null
}

/** Protocols whose value we can check, and those that take none; anything else ends the check. */
const VALUE_CHECKS: Record<string, (v: string) => string | null> = {
  ip4: (v) => isIPv4(v) ? null : `"${v}" is not an IPv4 address`,
  ip6: (v) => isIPv6(v) ? null : `"${v}" is not an IPv6 address`,
  dns: (v) => v.length > 0 ? null : 'empty host name',
  dns4: (v) => v.length > 0 ? null : 'empty host name',
  dns6: (v) => v.length > 0 ? null : 'empty host name',
  tcp: portProblem,
  udp: portProblem,
  p2p: (v) => v.length > 0 ? null : 'empty peer id'
}
const NO_VALUE = new Set(['quic', 'quic-v1', 'ws', 'wss', 'tls', 'noise', 'http', 'https', 'webtransport', 'webrtc', 'webrtc-direct', 'p2p-circuit'])

/** A multiaddr such as /ip4/10.0.0.1/tcp/4001: the parts we know are checked. */
export function multiaddrProblem (value: string): string | null {
  const parts = value.split('/').slice(1)
  for (let i = 0; i < parts.length;) {
    const proto = parts[i]!
    if (NO_VALUE.has(proto)) { i++; continue }
    const check = VALUE_CHECKS[proto]
    if (check === undefined) return null // a protocol we do not know: libp2p judges the rest
    const v = parts[i + 1]
    if (v === undefined) return `/${proto} needs a value`
    const problem = check(v)
    if (problem !== null) return problem
    i += 2
  }
  return null
}
