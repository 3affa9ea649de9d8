/**
 * Watches this process's file descriptors against its limit (Linux: the
 * entries of /proc/self/fd against "Max open files" in /proc/self/limits).
 * Node cannot tell: when accept() fails with EMFILE, libuv closes the new
 * connection with a reserved descriptor and reports nothing, so the clients
 * see resets, requests to replicas fail, and the server stays silent. So a
 * probe looks every second; exhaustion (EMFILE/ENFILE on the probe itself,
 * or fewer than HEADROOM descriptors left) is logged once when it starts and
 * once when it ends, and /health answers 503 while it lasts.
 */
import { readFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import type { Startable } from '../../mesh/startable.ts'

/** Fewer free descriptors than this counts as exhausted: accepts and dials are failing or about to. */
const HEADROOM = 16

export interface DescriptorWatchInit {
  /** @default 1000 */
  intervalMs?: number
  /** @default /proc/self */
  procDir?: string
}

export interface DescriptorWatchComponents {
  log: { warn: (o: object, msg: string) => void, info: (o: object, msg: string) => void }
}

/** The soft "Max open files" limit from a /proc/<pid>/limits text, or null. */
export function openFileLimit (limitsText: string): number | null {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limitsText)
  if (m === null || m[1] === 'unlimited') return null
  return Number(m[1])
}

export class DescriptorWatch implements Startable {
  private readonly intervalMs: number
  private readonly procDir: string
  private readonly c: DescriptorWatchComponents
  private timer: NodeJS.Timeout | undefined
  limit: number | null = null
  open = 0
  private exhausted: string | null = null

  constructor (init: DescriptorWatchInit, components: DescriptorWatchComponents) {
    this.intervalMs = init.intervalMs ?? 1000
    this.procDir = init.procDir ?? '/proc/self'
    this.c = components
  }

  async start (): Promise<void> {
    try {
      this.limit = openFileLimit(readFileSync(`${this.procDir}/limits`, 'utf8'))
    } catch {
      this.limit = null // not Linux: nothing to watch
    }
    if (this.limit === null) return
    this.timer = setInterval(() => { void this.probe() }, this.intervalMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Why the process is out of descriptors, or null. */
  problem (): string | null {
    return this.exhausted
  }

  async probe (): Promise<void> {
    let problem: string | null
    try {
      this.open = (await readdir(`${this.procDir}/fd`)).length
      problem = this.limit !== null && this.open + HEADROOM >= this.limit ? `file descriptors nearly exhausted: ${this.open} open of ${this.limit}` : null
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      problem = code === 'EMFILE' || code === 'ENFILE' ? `file descriptors exhausted (${code}): ${this.limit ?? '?'} open; new connections are being closed unanswered` : null
    }
    if (problem !== null && this.exhausted === null) this.c.log.warn({ open: this.open, limit: this.limit }, `${problem}: raise LimitNOFILE or lower http.max_connections`)
    if (problem === null && this.exhausted !== null) this.c.log.info({ open: this.open, limit: this.limit }, 'file descriptors available again')
    this.exhausted = problem
  }
}
