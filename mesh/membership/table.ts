/**
 * The member table: the latest heartbeat of every member and what the
 * failure detector makes of it. No I/O and no clock of its own — every
 * method takes `now` — so tests drive it with a fake clock and the
 * membership service drives it with the real one.
 *
 * As in memberlist, every handler first drops what is stale: a heartbeat
 * whose (incarnation, seq) is not newer than the one we hold changes nothing.
 */
import type { Heartbeat } from '../schemas/heartbeat.ts'
import type { FailureTiming } from './constants.ts'
import { compareVersion, stateOf, type Liveness, type MemberState } from './suspicion.ts'

export interface Member {
  id: string
  heartbeat: Heartbeat
  liveness: Liveness
  /** Connected to us directly right now. */
  connected: boolean
  /** State at the last evaluation; transitions are reported by evaluate(). */
  state: MemberState
  stateSince: number
  firstSeen: number
  /** The incarnation that said it left; only a later one (a restart) brings it back. */
  leftIncarnation: number
}

export interface Transition {
  id: string
  from: MemberState | 'unknown'
  to: MemberState
  member: Member
}

export type HeartbeatOutcome = 'new' | 'updated' | 'stale'

export class MemberTable {
  private readonly members = new Map<string, Member>()
  private readonly timing: FailureTiming
  private readonly self: string

  constructor (self: string, timing: FailureTiming) {
    this.self = self
    this.timing = timing
  }

  get size (): number {
    return this.members.size
  }

  get (id: string): Member | undefined {
    return this.members.get(id)
  }

  all (): IterableIterator<Member> {
    return this.members.values()
  }

  /**
   * Records a heartbeat. Returns 'stale' for anything not newer than what we
   * hold, 'new' for a member we did not know.
   */
  observeHeartbeat (hb: Heartbeat, now: number): { outcome: HeartbeatOutcome, transition: Transition | null } {
    const version = { incarnation: hb.incarnation, seq: hb.seq }
    const existing = this.members.get(hb.id)
    if (existing === undefined) {
      const member: Member = {
        id: hb.id,
        heartbeat: hb,
        liveness: { heardAt: now, version, disconnectedAt: null, versionAtDisconnect: null, left: hb.state === 'left' },
        connected: false,
        state: hb.state === 'left' ? 'left' : 'alive',
        stateSince: now,
        firstSeen: now,
        leftIncarnation: hb.state === 'left' ? hb.incarnation : -1
      }
      this.members.set(hb.id, member)
      return { outcome: 'new', transition: { id: hb.id, from: 'unknown', to: member.state, member } }
    }
    if (compareVersion(version, existing.liveness.version) <= 0) return { outcome: 'stale', transition: null }
    existing.heartbeat = hb
    existing.liveness.heardAt = now
    existing.liveness.version = version
    // A left member comes back only as a new incarnation (it was restarted).
    if (hb.state === 'left') {
      existing.liveness.left = true
      existing.leftIncarnation = hb.incarnation
    } else if (existing.liveness.left && hb.incarnation > existing.leftIncarnation) {
      existing.liveness.left = false
    }
    return { outcome: 'updated', transition: this.reevaluate(existing, now) }
  }

  observeConnected (id: string, now: number): Transition | null {
    const m = this.members.get(id)
    if (m === undefined) return null
    m.connected = true
    m.liveness.disconnectedAt = null
    m.liveness.versionAtDisconnect = null
    return this.reevaluate(m, now)
  }

  /** Our last connection to the member closed: suspect at once unless it speaks again. */
  observeDisconnected (id: string, now: number): Transition | null {
    const m = this.members.get(id)
    if (m === undefined) return null
    m.connected = false
    m.liveness.disconnectedAt = now
    m.liveness.versionAtDisconnect = { ...m.liveness.version }
    return this.reevaluate(m, now)
  }

  /** The member announced its departure (its final heartbeat says `left`). */
  markLeft (id: string, now: number): Transition | null {
    const m = this.members.get(id)
    if (m === undefined) return null
    m.liveness.left = true
    m.leftIncarnation = m.liveness.version.incarnation
    return this.reevaluate(m, now)
  }

  /** Re-evaluates every member; returns the state changes. */
  evaluate (now: number): Transition[] {
    const out: Transition[] = []
    for (const m of this.members.values()) {
      const t = this.reevaluate(m, now)
      if (t !== null) out.push(t)
    }
    return out
  }

  /** Removes members dead or left for longer than forget_after; returns their ids. */
  forget (now: number): string[] {
    const gone: string[] = []
    for (const m of this.members.values()) {
      if (m.id === this.self) continue
      if ((m.state === 'dead' || m.state === 'left') && now - m.stateSince >= this.timing.forgetAfterMs) {
        this.members.delete(m.id)
        gone.push(m.id)
      }
    }
    return gone
  }

  private reevaluate (m: Member, now: number): Transition | null {
    // We never suspect ourselves: our own record is refreshed by publishing.
    const next = m.id === this.self ? (m.liveness.left ? 'left' : 'alive') : stateOf(m.liveness, now, this.timing)
    if (next === m.state) return null
    const from = m.state
    m.state = next
    m.stateSince = now
    return { id: m.id, from, to: next, member: m }
  }
}
