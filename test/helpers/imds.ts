/**
 * A fake EC2 instance-metadata service (IMDS) for one instance, on a port of
 * a local address, for tests. Real nodes point @aws-sdk/ec2-metadata-service
 * at it with AWS_EC2_METADATA_SERVICE_ENDPOINT (never at 169.254.169.254).
 *
 * Models (as documented by AWS for IMDSv2):
 * - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`
 *   (1..21600) → a token; a missing or out-of-range TTL → 400; a PUT carrying
 *   `X-Forwarded-For` → 403 (IMDS refuses proxied token requests).
 * - every `GET /latest/...` needs `X-aws-ec2-metadata-token` with a live token:
 *   none, unknown or expired → 401 (the instance requires IMDSv2).
 * - meta-data: instance-id, instance-type, ami-id, local-ipv4,
 *   instance-life-cycle (spot | on-demand),
 *   placement/availability-zone, placement/region, tags/instance (keys, one
 *   per line; needs InstanceMetadataTags enabled, which the caller decides by
 *   passing tags), tags/instance/<key>; user-data; dynamic/instance-identity/document
 *   (with pendingTime, the launch time).
 * - spot/instance-action: 404 until an interruption is announced, then
 *   `{"action":"terminate","time":"<ISO 8601>"}`; events/recommendations/rebalance:
 *   404 until announced, then `{"noticeTime":"<ISO 8601>"}`.
 *
 * Does not model: IMDSv1 (always required v2), the hop limit, IPv6, IAM
 * credentials under iam/security-credentials (tests give the SDK dummy
 * credentials), scheduled maintenance events, throttling of IMDS itself.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'

export interface ImdsInstance {
  instanceId: string
  instanceType: string
  region: string
  zone: string
  imageId?: string
  localIpv4?: string
  /** Instance tags visible in metadata (InstanceMetadataTags: enabled); absent: the tags category is 404. */
  tags?: Record<string, string>
  /** Raw user data (as launched, not base64). */
  userData?: string
  /** instance-life-cycle. @default 'on-demand' */
  lifeCycle?: 'spot' | 'on-demand'
  /** When it was launched (epoch ms): the identity document's pendingTime. @default when the IMDS started */
  launchedAt?: number
}

export interface Imds {
  /** The base URL to give AWS_EC2_METADATA_SERVICE_ENDPOINT, e.g. http://127.0.0.1:40123 */
  readonly url: string
  /** Announces a spot interruption: the instance will be stopped/terminated at `at` (epoch ms). */
  announceInterruption: (at: number, action?: 'terminate' | 'stop' | 'hibernate') => void
  /** Announces a rebalance recommendation (noticed now, or at `at`). */
  announceRebalance: (at?: number) => void
  /** Requests answered, by path (for assertions on polling). */
  readonly hits: ReadonlyMap<string, number>
  close: () => Promise<void>
}

const MAX_TTL_S = 21600

/** Starts the metadata service of one instance on `host` (default 127.0.0.1), a free port. */
export async function startImds (inst: ImdsInstance, opts: { host?: string, now?: () => number } = {}): Promise<Imds> {
  const now = opts.now ?? Date.now
  const tokens = new Map<string, number>() // token → expiry (epoch ms)
  const hits = new Map<string, number>()
  let interruption: { action: string, at: number } | null = null
  let rebalanceAt: number | null = null

  const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
  const launchedAt = inst.launchedAt ?? now()
  const metaData = (path: string): string | null => {
    switch (path) {
      case 'instance-id': return inst.instanceId
      case 'instance-type': return inst.instanceType
      case 'ami-id': return inst.imageId ?? 'ami-00000000000000000'
      case 'local-ipv4': return inst.localIpv4 ?? '127.0.0.1'
      case 'instance-life-cycle': return inst.lifeCycle ?? 'on-demand'
      case 'placement/availability-zone': return inst.zone
      case 'placement/region': return inst.region
      case 'spot/instance-action': return interruption === null ? null : JSON.stringify({ action: interruption.action, time: iso(interruption.at) })
      case 'events/recommendations/rebalance': return rebalanceAt === null ? null : JSON.stringify({ noticeTime: iso(rebalanceAt) })
    }
    if (inst.tags !== undefined) {
      if (path === 'tags/instance') return Object.keys(inst.tags).join('\n')
      if (path.startsWith('tags/instance/')) return inst.tags[decodeURIComponent(path.slice('tags/instance/'.length))] ?? null
    }
    return null
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // The SDK joins its endpoint's path ("/") and the request's ("/latest/…")
    // into "//latest/…"; the real service accepts that, so this one does too.
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/{2,}/g, '/')
    hits.set(path, (hits.get(path) ?? 0) + 1)
    const send = (status: number, body = ''): void => {
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }
    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return send(405)
      if (req.headers['x-forwarded-for'] !== undefined) return send(403)
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds'])
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_S) return send(400)
      const token = randomBytes(24).toString('base64url')
      tokens.set(token, now() + ttl * 1000)
      res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl))
      return send(200, token)
    }
    if (req.method !== 'GET') return send(405)
    const token = req.headers['x-aws-ec2-metadata-token']
    const expiry = typeof token === 'string' ? tokens.get(token) : undefined
    if (expiry === undefined || expiry <= now()) return send(401)
    let body: string | null = null
    if (path.startsWith('/latest/meta-data/')) body = metaData(path.slice('/latest/meta-data/'.length).replace(/\/$/, ''))
    else if (path === '/latest/user-data') body = inst.userData ?? null
    else if (path === '/latest/dynamic/instance-identity/document') {
      body = JSON.stringify({ instanceId: inst.instanceId, instanceType: inst.instanceType, region: inst.region, availabilityZone: inst.zone, imageId: inst.imageId ?? 'ami-00000000000000000', privateIp: inst.localIpv4 ?? '127.0.0.1', pendingTime: iso(launchedAt), accountId: '123456789012', architecture: process.arch === 'arm64' ? 'arm64' : 'x86_64', version: '2017-09-30' })
    }
    return body === null ? send(404) : send(200, body)
  }

  const server: Server = createServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const { address, port } = server.address() as AddressInfo
  return {
    url: `http://${address}:${port}`,
    announceInterruption: (at, action = 'terminate') => { interruption = { action, at } },
    announceRebalance: (at) => { rebalanceAt = at ?? now() },
    hits,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}
