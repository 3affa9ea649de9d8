/**
 * Voters started at once, each alone, then joined one by one (a chain: each
 * through the one before it; a star: each through the first), on a virtual
 * clock: the group rules of group.ts (who bootstraps, which group yields,
 * whom a leader adds) driving real `Raft` cores, as the shell in
 * service.ts does. What the other members announce reaches a voter only
 * through membership heartbeats (every mesh heartbeat, and at once to both
 * ends of a new connection), so each voter decides from a view that lags, as
 * on a real mesh. Raft messages travel between any two joined voters.
 *
 * The question it answers: after the last join, how long until one leader
 * that every voter names, in one group holding every voter? (Or never:
 * issue 11's stranded voter.)
 *
 * Everything random comes from the seed, so a run replays exactly.
 */
import { Raft } from '../raft/raft.ts'
import { parseMessage, toWire } from '../raft/messages.ts'
import { DEFAULT_TIMING, type Timing } from '../raft/timing.ts'
import type { Message } from '../raft/types.ts'
import {
  admit, ourSize, bootstrapVerdict, strandedVerdict, voterToAdd, yieldVerdict, BOOTSTRAP_MAX_WAIT_MS, BOOTSTRAP_SETTLE_MS, type GroupView
} from '../group.ts'
import { DriftClock } from './clock.ts'
import { EventHeap, type Timed } from './heap.ts'
import { Rng } from './prng.ts'

export type Topology = 'chain' | 'star'

export interface MergeOptions {
  seed: number
  voters: number
  topology: Topology
  timing?: Timing
  /** Membership heartbeat interval (mesh.heartbeat_ms). @default 1000 */
  meshHeartbeatMs?: number
  /** When the first join happens after the (simultaneous) start, uniform in the range. @default [0, 5000] */
  firstJoinMs?: readonly [number, number]
  /** Gap between joins, uniform in the range. @default [0, 3000] */
  joinGapMs?: readonly [number, number]
  /** One-way delay of every message, uniform in the range. @default [1, 20] */
  delayMs?: readonly [number, number]
  trace?: boolean
}

/** What one voter announces in its membership heartbeat (ElectionHeartbeat's fields that group.ts reads). */
interface Announcement { group: string | null, leader: string | null, voters: number }

interface Voter {
  id: string
  clock: DriftClock
  rng: Rng
  raft: Raft
  group: string | null
  startedAt: number
  /** The membership table: the latest announcement heard from each member. */
  heard: Map<string, Announcement>
}

type Body =
  | { kind: 'tick', node: string }
  | { kind: 'house', node: string }
  | { kind: 'beat', node: string, periodic: boolean }
  | { kind: 'raft', from: string, to: string, group: string | null, data: string }
  | { kind: 'announce', from: string, to: string, a: Announcement }
  | { kind: 'join', node: string, through: string }
type SimEvent = Timed & Body

const TICK_MS = 50
const HOUSEKEEPING_MS = 250
/** Virtual wall clock at the start (group ids embed the wall time, as the shell's do). */
const WALL_START = 1_750_000_000_000

export interface MergeResult {
  /** Virtual ms from the last join until every voter named the same acting leader of a group holding all voters; null if never. */
  settledMs: number | null
  lastJoinAt: number
  leader: string | null
  /** Groups bootstrapped and yields, for the report. */
  bootstraps: number
  yields: number
}

export class MergeSim {
  readonly timing: Required<Timing>
  readonly trace: string[] = []
  private readonly opts: MergeOptions
  private readonly rng: Rng
  private readonly queue = new EventHeap<SimEvent>()
  private readonly nodes = new Map<string, Voter>()
  /** Connected components of the mesh (union-find over joins). */
  private readonly parent = new Map<string, string>()
  private seq = 0
  now = 0
  lastJoinAt = 0
  bootstraps = 0
  yields = 0

  constructor (opts: MergeOptions) {
    this.opts = opts
    this.timing = { ...DEFAULT_TIMING, ...opts.timing }
    this.rng = new Rng(opts.seed)
    const ids: string[] = []
    // Peer ids are random: the order of starting says nothing about the order of ids.
    for (let i = 0; i < opts.voters; i++) ids.push(`p${this.rng.u32().toString(16).padStart(8, '0')}`)
    for (const id of ids) {
      const clock = new DriftClock(0, this.rng.range(0, 1e7), this.rng.range(1 - this.timing.maxDriftRate, 1 + this.timing.maxDriftRate))
      const rng = this.rng.fork()
      const raft = new Raft({ id, hardState: { term: 0, votedFor: null }, log: [], timing: this.timing, random: rng.fn(), now: clock.local(0) })
      this.nodes.set(id, { id, clock, rng, raft, group: null, startedAt: clock.local(0), heard: new Map() })
      this.parent.set(id, id)
      // Timers start at a random phase: the processes did not start in the same millisecond.
      this.push(this.rng.range(0, TICK_MS), { kind: 'tick', node: id })
      this.push(this.rng.range(0, HOUSEKEEPING_MS), { kind: 'house', node: id })
      this.push(this.rng.range(0, this.beatMs), { kind: 'beat', node: id, periodic: true })
    }
    const [lo, hi] = opts.firstJoinMs ?? [0, 5000]
    const [glo, ghi] = opts.joinGapMs ?? [0, 3000]
    let at = this.rng.range(lo, hi)
    for (let i = 1; i < ids.length; i++) {
      const through = opts.topology === 'chain' ? ids[i - 1]! : ids[0]!
      this.push(at, { kind: 'join', node: ids[i]!, through })
      this.lastJoinAt = at
      at += this.rng.range(glo, ghi)
    }
  }

  ids (): string[] { return [...this.nodes.keys()] }

  private get beatMs (): number { return this.opts.meshHeartbeatMs ?? 1000 }

  private push (delay: number, ev: Body): void {
    this.queue.push({ ...ev, at: this.now + delay, seq: this.seq++ })
  }

  private delay (): number {
    const [lo, hi] = this.opts.delayMs ?? [1, 20]
    return this.rng.range(lo, hi)
  }

  private root (id: string): string {
    let r = id
    while (this.parent.get(r) !== r) r = this.parent.get(r)!
    return r
  }

  private connected (a: string, b: string): boolean { return this.root(a) === this.root(b) }

  private local (v: Voter): number { return v.clock.local(this.now) }

  private log (line: string): void {
    if (this.opts.trace === true) this.trace.push(`${this.now.toFixed(1).padStart(9)} ${line}`)
  }

  // ------------------------------------------------------------- running

  runUntil (t: number, stop?: () => boolean): boolean {
    for (;;) {
      const ev = this.queue.peek()
      if (ev === undefined || ev.at > t) break
      this.queue.pop()
      this.now = ev.at
      this.dispatch(ev)
      if (stop?.() === true) return true
    }
    this.now = Math.max(this.now, t)
    return false
  }

  /** Runs until every voter agrees (or `boundMs` after the last join passes); then checks it stays so for `holdMs`. */
  run (boundMs: number, holdMs = 3000): MergeResult {
    const settled = this.runUntil(this.lastJoinAt + boundMs, () => this.now >= this.lastJoinAt && this.agreed() !== null)
    const settledMs = settled ? this.now - this.lastJoinAt : null
    const leader = this.agreed()
    if (settled) {
      // One leader, kept: no voter may drift off again once all agreed.
      const end = this.now + holdMs
      while (this.now < end) {
        this.runUntil(Math.min(end, this.now + 100))
        const still = this.agreed()
        if (still === null) throw new Error(`seed ${this.opts.seed}: agreement on ${leader} lost at ${this.now.toFixed(0)} ms: ${this.describe()}`)
      }
    }
    return { settledMs, lastJoinAt: this.lastJoinAt, leader, bootstraps: this.bootstraps, yields: this.yields }
  }

  /** The leader every voter names, if all are in one group whose acting leader's config holds every voter. */
  agreed (): string | null {
    const all = [...this.nodes.values()]
    const leaders = new Set(all.map((v) => this.reported(v)))
    const groups = new Set(all.map((v) => v.group))
    if (leaders.size !== 1 || groups.size !== 1) return null
    const [leader] = leaders
    if (leader === null || leader === undefined) return null
    const l = this.nodes.get(leader)!
    const voters = l.raft.status(this.local(l)).voters
    return voters.length === all.length ? leader : null
  }

  describe (): string {
    return [...this.nodes.values()].map((v) => {
      const s = v.raft.status(this.local(v))
      return `${v.id}: group=${v.group ?? '-'} ${s.role} t${s.term} leader=${this.reported(v) ?? '-'} voters=[${s.voters.join(',')}]`
    }).join('; ')
  }

  // ------------------------------------------------------------- events

  private dispatch (ev: SimEvent): void {
    switch (ev.kind) {
      case 'tick': {
        const v = this.nodes.get(ev.node)!
        v.raft.tick(this.local(v))
        this.flush(v)
        this.push(TICK_MS, { kind: 'tick', node: v.id })
        return
      }
      case 'house': {
        this.housekeeping(this.nodes.get(ev.node)!)
        this.push(HOUSEKEEPING_MS, { kind: 'house', node: ev.node })
        return
      }
      case 'beat': {
        const v = this.nodes.get(ev.node)!
        const a = this.announcement(v)
        for (const o of this.nodes.values()) {
          if (o.id !== v.id && this.connected(v.id, o.id)) this.push(this.delay(), { kind: 'announce', from: v.id, to: o.id, a })
        }
        if (ev.periodic) this.push(this.beatMs, { kind: 'beat', node: v.id, periodic: true })
        return
      }
      case 'announce':
        this.nodes.get(ev.to)!.heard.set(ev.from, ev.a)
        return
      case 'join': {
        this.log(`JOIN ${ev.node} through ${ev.through}`)
        this.parent.set(this.root(ev.node), this.root(ev.through))
        // A new connection: both ends publish a heartbeat at once (membership's onConnect).
        this.push(0, { kind: 'beat', node: ev.node, periodic: false })
        this.push(0, { kind: 'beat', node: ev.through, periodic: false })
        return
      }
      case 'raft': {
        const v = this.nodes.get(ev.to)!
        if (!this.connected(ev.from, ev.to)) return
        const msg = parseMessage(JSON.parse(ev.data))
        const verdict = admit(v.group, true, ev.group, msg.type)
        if (verdict === 'drop') return
        if (verdict === 'adopt') {
          v.group = ev.group
          this.log(`${v.id} adopted by ${ev.group ?? '-'} (from ${msg.from})`)
        }
        v.raft.step(msg, this.local(v))
        this.flush(v)
      }
    }
  }

  private flush (v: Voter): void {
    const before = `${v.raft.currentLeader ?? '-'}/${v.raft.currentTerm}`
    while (v.raft.hasReady()) {
      const rd = v.raft.ready()
      for (const m of rd.messages) this.send(v, m)
    }
    const after = `${v.raft.currentLeader ?? '-'}/${v.raft.currentTerm}`
    if (before !== after) this.log(`${v.id} leader/term ${before} -> ${after} (${v.raft.currentRole})`)
  }

  private send (v: Voter, m: Message): void {
    if (!this.connected(v.id, m.to)) return
    this.push(this.delay(), { kind: 'raft', from: v.id, to: m.to, group: v.group, data: JSON.stringify(toWire(m)) })
  }

  /** The shell's reportedLeader(): itself only while it may act. */
  private reported (v: Voter): string | null {
    const s = v.raft.status(this.local(v))
    if (s.leader === v.id) return s.acting ? v.id : null
    return s.leader
  }

  private announcement (v: Voter): Announcement {
    return { group: v.group, leader: this.reported(v), voters: v.raft.status(this.local(v)).voters.length }
  }

  private views (v: Voter): GroupView[] {
    return [...v.heard].map(([id, a]) => ({ id, group: a.group, leader: a.leader, voters: a.voters, voter: true, alive: true }))
  }

  /** The shell's housekeeping (service.ts): bootstrap, yield, or (leader) add a voter. */
  private housekeeping (v: Voter): void {
    const t = this.local(v)
    const others = this.views(v)
    if (v.group === null) {
      const verdict = bootstrapVerdict({ id: v.id, group: null, voters: 0, voter: true, startedAt: v.startedAt, knowsPeers: false }, others, t, BOOTSTRAP_SETTLE_MS, BOOTSTRAP_MAX_WAIT_MS)
      if (verdict.action === 'bootstrap') {
        v.group = `${(WALL_START + Math.floor(this.now)).toString(36).padStart(9, '0')}.${v.id}`
        v.raft.bootstrap([v.id])
        v.raft.campaignSoon(t)
        this.bootstraps++
        this.log(`${v.id} BOOTSTRAP ${v.group} (${verdict.reason})`)
        this.flush(v)
      }
      return
    }
    const status = v.raft.status(t)
    const stranded = strandedVerdict({ id: v.id, group: v.group, voters: status.voters }, others)
    const y = yieldVerdict({ group: v.group, voters: ourSize({ id: v.id, group: v.group, leader: status.leader, voters: status.voters.length }, others) }, others)
    if (stranded.stranded || y.yield) {
      this.log(`${v.id} LEAVES ${v.group}: ${stranded.stranded ? stranded.reason : y.yield ? y.reason : ''}`)
      this.yields++
      v.group = null
      v.raft = new Raft({ id: v.id, hardState: { term: 0, votedFor: null }, log: [], timing: this.timing, random: v.rng.fn(), now: t })
      return
    }
    if (status.role !== 'leader') return
    const add = voterToAdd(v.group, status.voters, others)
    const caught = v.raft.catchUp(add, t)
    if (add !== null && caught === 'caught_up') {
      const r = v.raft.proposeConfig({ add }, t)
      this.log(`${v.id} add ${add} -> ${JSON.stringify(r)}`)
    }
    this.flush(v)
  }
}
