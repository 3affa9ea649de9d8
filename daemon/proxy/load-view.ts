/**
 * This node's estimate of each member's replica load, fresher than the last
 * heartbeat: the member's own report (from its heartbeat, or piggybacked on
 * a response it proxied for us, whichever arrived last), plus the requests
 * this node sent it since, minus those that finished since.
 *
 * Requests other entry nodes send in between are invisible until the next
 * report; the estimate never drops below what this node itself has in flight
 * there. Pure: no clock, no I/O.
 */

import type { LoadReport } from '../../mesh/infer/schemas.ts'
export type { LoadReport }

interface Entry {
  base: number
  sentSince: number
  doneSince: number
  mine: number
  measuredAt: number
  rate: number | undefined
}

export class LoadView {
  private readonly members = new Map<string, Entry>()

  /** A fresh report from the member itself (heartbeat or piggyback). */
  report (id: string, r: LoadReport): void {
    const e = this.entry(id)
    // A heartbeat sent before a piggybacked report but received after it is stale.
    if (r.at !== undefined) {
      if (r.at < e.measuredAt) return
      e.measuredAt = r.at
    }
    e.base = Math.max(0, r.inflight + r.queued)
    if (r.rate !== undefined) e.rate = r.rate
    e.sentSince = 0
    e.doneSince = 0
  }

  dispatched (id: string): void {
    const e = this.entry(id)
    e.mine++
    e.sentSince++
  }

  finished (id: string): void {
    const e = this.entry(id)
    e.mine = Math.max(0, e.mine - 1)
    e.doneSince++
  }

  /** Estimated requests in flight and queued at the member. */
  outstanding (id: string): number {
    const e = this.members.get(id)
    if (e === undefined) return 0
    return Math.max(e.mine, e.base + e.sentSince - e.doneSince, 0)
  }

  /** The member's last reported speed, if it has reported one. */
  rate (id: string): number | undefined {
    return this.members.get(id)?.rate
  }

  /** Requests this node has in flight at the member right now. */
  mine (id: string): number {
    return this.members.get(id)?.mine ?? 0
  }

  forget (id: string): void {
    this.members.delete(id)
  }

  private entry (id: string): Entry {
    let e = this.members.get(id)
    if (e === undefined) {
      e = { base: 0, sentSince: 0, doneSince: 0, mine: 0, measuredAt: 0, rate: undefined }
      this.members.set(id, e)
    }
    return e
  }
}
