/**
 * One EC2Client per region, made on first use and kept: the standard
 * credential chain (env, shared config / profile, SSO, the instance role),
 * the configured `endpoint` (an EC2-compatible server instead of AWS's own),
 * the retry strategy of retry.ts, and timeouts on the connection and on each
 * attempt. `deadline()` bounds a whole call, retries and backoff included.
 */
import { EC2Client } from '@aws-sdk/client-ec2'
import { Ec2RetryStrategy, type RetryPolicy } from './retry.ts'

export interface Ec2ClientsInit {
  /** An EC2-compatible endpoint URL; null: AWS's own for each region. */
  endpoint: string | null
  retry?: Partial<RetryPolicy>
  /** TCP connect, per attempt. @default 5 s */
  connectTimeoutMs?: number
  /** One HTTP exchange, per attempt. @default 15 s */
  attemptTimeoutMs?: number
  /** @default Math.random */
  random?: () => number
  onRetry?: (region: string, code: string, attempt: number, delayMs: number) => void
}

export class Ec2Clients {
  private readonly init: Ec2ClientsInit
  private readonly clients = new Map<string, EC2Client>()

  constructor (init: Ec2ClientsInit) {
    this.init = init
  }

  /** The client of `region`. */
  ec2 (region: string): EC2Client {
    let c = this.clients.get(region)
    if (c === undefined) {
      const onRetry = this.init.onRetry
      c = new EC2Client({
        region,
        ...(this.init.endpoint === null ? {} : { endpoint: this.init.endpoint }),
        retryStrategy: new Ec2RetryStrategy(this.init.retry, this.init.random, onRetry === undefined ? undefined : (code, attempt, ms) => { onRetry(region, code, attempt, ms) }),
        requestHandler: { connectionTimeout: this.init.connectTimeoutMs ?? 5_000, requestTimeout: this.init.attemptTimeoutMs ?? 15_000 }
      })
      this.clients.set(region, c)
    }
    return c
  }

  /** Closes every client's sockets (keep-alive agents would otherwise hold the process open). */
  destroy (): void {
    for (const c of this.clients.values()) c.destroy()
    this.clients.clear()
  }
}

/** Send options that abort the whole call, retries included, after `ms`. */
export function deadline (ms: number): { abortSignal: AbortSignal } {
  return { abortSignal: AbortSignal.timeout(ms) }
}
