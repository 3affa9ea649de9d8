/**
 * Polls the EC2 instance metadata (IMDSv2, through @aws-sdk/ec2-metadata-service:
 * token first; AWS_EC2_METADATA_SERVICE_ENDPOINT or `endpoint` say where) for
 * a spot interruption notice and a rebalance recommendation, every
 * `intervalMs`. Runs only on a node whose config has `instance.notices: ec2`.
 *
 * It never takes the node down: a metadata service that does not answer is
 * logged once (and once more when it answers again) and polled on. Each
 * notice is logged and counted once; what to do about it is the daemon's
 * (`onNotice`). The parsing and the state are notices.ts.
 */
import { MetadataService } from '@aws-sdk/ec2-metadata-service'
import type { Log } from '../log.ts'
import type { Startable } from '../../mesh/startable.ts'
import { currentNotice, initialNotices, observe, type Notice, type NoticeKind, type NoticeState, type Reading } from './notices.ts'

export const ACTION_PATH = '/latest/meta-data/spot/instance-action'
export const REBALANCE_PATH = '/latest/meta-data/events/recommendations/rebalance'

export interface NoticePollerInit {
  /** `instance.notice_poll`. @default 5000 (what AWS recommends for instance-action) */
  intervalMs?: number
  /** The metadata service's base URL. @default AWS_EC2_METADATA_SERVICE_ENDPOINT, else the SDK's (169.254.169.254) */
  endpoint?: string
  /** One read's timeout: a poll must end well within the interval. @default min(2000, intervalMs) */
  timeoutMs?: number
}

export interface NoticePollerComponents {
  log: Log
  /** Counts a notice seen (meshd_spot_notices_total). */
  count: (kind: NoticeKind) => void
  /** The heartbeat's notice changed (a new one, or an interruption's time moved). */
  onNotice: (notice: Notice) => void
}

export class NoticePoller implements Startable {
  private readonly intervalMs: number
  /** Fetches IMDSv2 session tokens (PUT /latest/api/token). */
  private readonly tokens: MetadataService
  /** Reads with the token this poller holds (the SDK would otherwise fetch a new token for every read). */
  private readonly reads: MetadataService
  private readonly c: NoticePollerComponents
  private state: NoticeState = initialNotices()
  private token: { value: string, until: number } | null = null
  private fetching: Promise<string> | undefined
  private timer: NodeJS.Timeout | undefined
  private running = false
  private polling: Promise<void> | undefined

  constructor (init: NoticePollerInit, components: NoticePollerComponents) {
    this.intervalMs = init.intervalMs ?? 5000
    this.c = components
    // No retries inside a poll (the next poll is the retry). The token client
    // never falls back to IMDSv1; the read client sends the token it is given
    // (disableFetchToken), so every read is IMDSv2 all the same.
    const common = {
      ...(init.endpoint !== undefined ? { endpoint: init.endpoint } : {}),
      retries: 0,
      httpOptions: { timeout: init.timeoutMs ?? Math.min(2000, this.intervalMs) }
    }
    this.tokens = new MetadataService({ ...common, ec2MetadataV1Disabled: true, tokenTtl: TOKEN_TTL_S })
    this.reads = new MetadataService({ ...common, disableFetchToken: true })
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.schedule(0)
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    await this.polling
  }

  /** The notice the heartbeat carries now, or null. */
  get notice (): Notice | null {
    return currentNotice(this.state)
  }

  private schedule (ms: number): void {
    if (!this.running) return
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => { this.schedule(this.intervalMs) })
    }, ms)
    this.timer.unref()
  }

  /** One poll of both paths (exported for tests through the class). */
  async poll (): Promise<void> {
    const [action, rebalance] = await Promise.all([this.read(ACTION_PATH), this.read(REBALANCE_PATH)])
    const before = currentNotice(this.state)
    const r = observe(this.state, { action, rebalance })
    this.state = r.state
    for (const e of r.events) {
      switch (e.type) {
        case 'interruption':
          this.c.count('interruption')
          this.c.log.warn({ action: e.action, at: new Date(e.at).toISOString(), in_ms: e.at - Date.now() }, `spot interruption notice: EC2 will ${e.action} this instance at ${new Date(e.at).toISOString()}; draining now`)
          break
        case 'rebalance':
          this.c.count('rebalance')
          this.c.log.warn({ at: new Date(e.at).toISOString() }, 'rebalance recommendation: EC2 sees this spot instance at elevated risk of interruption; still serving, the leader starts a replacement')
          break
        case 'unreachable':
          this.c.log.warn({ error: e.error }, `instance metadata unreachable: ${e.error}; polling on every ${this.intervalMs} ms`)
          break
        case 'reachable':
          this.c.log.info('instance metadata answers again')
          break
      }
    }
    const after = currentNotice(this.state)
    if (after !== null && (before === null || before.kind !== after.kind || before.at !== after.at)) this.c.onNotice(after)
  }

  private async read (path: string): Promise<Reading> {
    try {
      const token = await this.session()
      return { status: 'body', body: await this.reads.request(path, { headers: { 'x-aws-ec2-metadata-token': token } }) }
    } catch (err) {
      const e = err as { $metadata?: { httpStatusCode?: number }, statusCode?: number, message?: string }
      const status = e.$metadata?.httpStatusCode ?? e.statusCode
      if (status === 404) return { status: 'none' }
      if (status === 401) this.token = null // expired or unknown (IMDS restarted): a new one next time
      return { status: 'error', error: e.message ?? String(err) }
    }
  }

  /** The session token, fetched again a minute before it expires (AWS: reuse tokens, do not fetch one per read). */
  private async session (): Promise<string> {
    if (this.token !== null && Date.now() < this.token.until) return this.token.value
    // Both reads of a poll share one fetch.
    this.fetching ??= this.tokens.fetchMetadataToken().then((value) => {
      this.token = { value, until: Date.now() + (TOKEN_TTL_S - 60) * 1000 }
      return value
    }).finally(() => { this.fetching = undefined })
    return this.fetching
  }
}

/** IMDSv2 session tokens live this long (seconds; IMDS allows up to 6 h). */
const TOKEN_TTL_S = 3600
