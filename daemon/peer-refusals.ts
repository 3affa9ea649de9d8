/**
 * What the daemon does with a connection the private network refused
 * (mesh/pnet-guard.ts): counts every one in `meshd_peers_refused_total
 * {reason="swarm_key"}` and logs it with the peer's address. A peer with the
 * wrong key keeps redialling (every 30 s once its back-off is at the cap), so
 * the warning is given once per remote host per minute and the repeats go to
 * debug; the counter has them all.
 */
import type { PnetRefusal } from '../mesh/pnet-guard.ts'

export const REFUSAL_WARN_EVERY_MS = 60_000

export interface RefusalReporterComponents {
  metrics: { peersRefused: { inc: (labels: { reason: string }) => void } }
  log: { warn: (o: object, msg: string) => void, debug: (o: object, msg: string) => void }
  /** The swarm key file this node uses, named in the log. */
  keyFile: string
  now?: () => number
}

/** The host part of a multiaddr (/ip4/10.0.0.7/tcp/4001/... → 10.0.0.7), which throttles the warning. */
export function hostOf (addr: string): string {
  return /^\/(?:ip4|ip6|dns|dns4|dns6)\/([^/]+)/.exec(addr)?.[1] ?? addr
}

export function refusalReporter (c: RefusalReporterComponents): (r: PnetRefusal) => void {
  const now = c.now ?? Date.now
  const warnedAt = new Map<string, number>()
  return (r) => {
    c.metrics.peersRefused.inc({ reason: r.reason })
    const host = hostOf(r.remoteAddr)
    const t = now()
    const last = warnedAt.get(host)
    const fields = { remote: r.remoteAddr, direction: r.direction, reason: r.reason, detail: r.detail, swarm_key_file: c.keyFile }
    const msg = r.direction === 'inbound'
      ? `refused a connection from ${r.remoteAddr}: the private network handshake failed, the peer most likely uses a different swarm key than ${c.keyFile}`
      : `could not connect to ${r.remoteAddr}: the private network handshake failed, the peer most likely uses a different swarm key than ${c.keyFile}`
    if (last !== undefined && t - last < REFUSAL_WARN_EVERY_MS) {
      c.log.debug(fields, msg)
      return
    }
    // Forget hosts not heard of for a while, so the map stays small.
    for (const [h, at] of warnedAt) if (t - at >= REFUSAL_WARN_EVERY_MS) warnedAt.delete(h)
    warnedAt.set(host, t)
    c.log.warn(fields, msg)
  }
}
