/**
 * A deterministic cluster of real `Raft` instances on a virtual clock and a
 * virtual network. Each node has a shell like production's: it drains
 * ready() (at once, or a few ms later — an asynchronous shell), persists
 * hardState and the log, sends messages as JSON through parseMessage, and
 * applies committed entries. A crash throws away everything not persisted;
 * a restart builds a new Raft from what was. A pause is a hung process: no
 * ticks, incoming messages queue, and on resume timers fire before the
 * queued I/O, as in Node's event loop.
 *
 * Everything random comes from the seed, so a run replays exactly.
 */
import { Raft } from '../raft/raft.ts'
import { parseMessage, toWire } from '../raft/messages.ts'
import { DEFAULT_TIMING, type Timing } from '../raft/timing.ts'
import type { ConfigChange, Entry, HardState, Message, ProposeConfigResult, ProposeResult } from '../raft/types.ts'
import { Checker, SimViolation, type NodeView } from './checker.ts'
import { DriftClock } from './clock.ts'
import { EventHeap, type Timed } from './heap.ts'
import { CALM_NET, Network, type NetConfig } from './network.ts'
import { Rng } from './prng.ts'

export interface ClusterOptions {
  seed: number
  /** Initial voters, all bootstrapped with the same config. */
  voters: number
  timing?: Timing
  net?: NetConfig
  /** Clock rates: all exact, uniform in [1−ρ, 1+ρ], or mostly at the extremes. */
  drift?: 'none' | 'random' | 'extreme'
  /** Probability that a shell drains ready() up to 5 ms later instead of at once. */
  asyncFlush?: number
  /** Timers fire up to this late (a busy event loop). */
  timerLateMs?: number
  /** Probability a restarted node keeps its state machine (applied index). */
  keepApplied?: number
  /** Record a trace of events (for replaying a failing seed). */
  trace?: boolean
}

interface Slot {
  id: string
  raft: Raft | null
  clock: DriftClock
  store: { hardState: HardState, log: Entry[], applied: number }
  rng: Rng
  paused: boolean
  inbox: Message[]
  tickGen: number
  tickAt: number
  flushPending: boolean
  /** Crashed for good (removed from the cluster). */
  retired: boolean
}

type SimEvent = Timed & (
  | { kind: 'deliver', from: string, to: string, data: string }
  | { kind: 'tick', node: string, gen: number }
  | { kind: 'flush', node: string }
  | { kind: 'call', label: string, fn: () => void }
)

export class Cluster {
  readonly timing: Required<Timing>
  readonly net: Network
  readonly checker = new Checker()
  readonly rng: Rng
  readonly trace: string[] = []
  private readonly opts: ClusterOptions
  private readonly netRng: Rng
  private readonly slots = new Map<string, Slot>()
  private readonly queue = new EventHeap<SimEvent>()
  private seq = 0
  private nextId = 1
  now = 0
  events = 0
  messagesSent = 0

  constructor (opts: ClusterOptions) {
    this.opts = opts
    this.timing = { ...DEFAULT_TIMING, ...opts.timing }
    this.rng = new Rng(opts.seed)
    this.netRng = this.rng.fork()
    this.net = new Network(opts.net ?? CALM_NET)
    const ids: string[] = []
    for (let i = 0; i < opts.voters; i++) ids.push(this.allocId())
    for (const id of ids) this.createNode(id, ids)
  }

  // ---------------------------------------------------------------- nodes

  private allocId (): string { return `n${this.nextId++}` }

  private drawRate (): number {
    const rho = this.timing.maxDriftRate
    switch (this.opts.drift ?? 'random') {
      case 'none': return 1
      case 'random': return this.rng.range(1 - rho, 1 + rho)
      case 'extreme': return this.rng.chance(0.8) ? (this.rng.chance(0.5) ? 1 - rho : 1 + rho) : this.rng.range(1 - rho, 1 + rho)
    }
  }

  private createNode (id: string, bootstrap: string[] | null): Slot {
    const slot: Slot = {
      id,
      raft: null,
      clock: new DriftClock(this.now, this.rng.range(0, 1e7), this.drawRate()),
      store: { hardState: { term: 0, votedFor: null }, log: [], applied: 0 },
      rng: this.rng.fork(),
      paused: false,
      inbox: [],
      tickGen: 0,
      tickAt: Infinity,
      flushPending: false,
      retired: false
    }
    this.slots.set(id, slot)
    this.boot(slot, 0)
    if (bootstrap !== null) slot.raft!.bootstrap(bootstrap)
    this.afterNodeEvent(slot)
    return slot
  }

  private boot (slot: Slot, applied: number): void {
    slot.raft = new Raft({
      id: slot.id,
      hardState: { ...slot.store.hardState },
      log: slot.store.log.slice(),
      timing: this.timing,
      random: slot.rng.fn(),
      now: slot.clock.local(this.now),
      applied
    })
  }

  /** Adds a fresh, empty node (not bootstrapped) and asks the leader to make it a voter. */
  addNode (): { id: string, result: ProposeConfigResult } | null {
    const leader = this.leaderSlot()
    if (leader === null) return null
    const id = this.allocId()
    this.createNode(id, null)
    const result = this.changeConfig({ add: id })
    if ('error' in result) this.retire(id)
    return { id, result }
  }

  changeConfig (change: ConfigChange): ProposeConfigResult {
    const leader = this.leaderSlot()
    if (leader === null) return { error: 'not_leader', leader: null }
    const r = leader.raft!.proposeConfig(change, this.localOf(leader))
    this.log(`${leader.id} proposeConfig ${JSON.stringify(change)} → ${JSON.stringify(r)}`)
    this.afterNodeEvent(leader)
    return r
  }

  propose (id: string, data: unknown): ProposeResult | null {
    const slot = this.slots.get(id)
    if (slot?.raft == null || slot.paused) return null
    const r = slot.raft.propose(data, this.localOf(slot))
    this.afterNodeEvent(slot)
    return r
  }

  crash (id: string): void {
    const slot = this.slots.get(id)
    if (slot?.raft == null) return
    this.log(`${id} CRASH`)
    slot.raft = null
    slot.paused = false
    slot.inbox = []
    slot.flushPending = false // whatever ready() had not been persisted is lost
    slot.tickGen++
    slot.tickAt = Infinity
    this.check()
  }

  restart (id: string): void {
    const slot = this.slots.get(id)
    if (slot === undefined || slot.raft !== null || slot.retired) return
    // A new process: its monotonic clock starts somewhere else.
    slot.clock = new DriftClock(this.now, this.rng.range(0, 1e7), this.drawRate())
    const keep = this.rng.chance(this.opts.keepApplied ?? 0.5)
    const applied = keep ? slot.store.applied : 0
    if (!keep) {
      // The state machine is rebuilt from the log: it re-applies from index 1.
      slot.store.applied = 0
      this.checker.resetApplied(id)
    }
    this.log(`${id} RESTART term=${slot.store.hardState.term} log=${slot.store.log.length} applied=${applied}`)
    this.boot(slot, applied)
    this.afterNodeEvent(slot)
  }

  /** Crashes a node for good (it was removed from the cluster). */
  retire (id: string): void {
    const slot = this.slots.get(id)
    if (slot === undefined) return
    this.crash(id)
    slot.retired = true
  }

  pause (id: string, ms: number): void {
    const slot = this.slots.get(id)
    if (slot?.raft == null || slot.paused) return
    this.log(`${id} PAUSE ${ms.toFixed(0)} ms`)
    slot.paused = true
    const raft = slot.raft
    this.at(ms, `resume ${id}`, () => { if (slot.raft === raft) this.resume(id) })
  }

  resume (id: string): void {
    const slot = this.slots.get(id)
    if (slot?.raft == null || !slot.paused) return
    this.log(`${id} RESUME (${slot.inbox.length} queued)`)
    slot.paused = false
    // Node's event loop runs due timers before pending I/O callbacks.
    slot.raft.tick(this.localOf(slot))
    this.afterNodeEvent(slot)
    const inbox = slot.inbox
    slot.inbox = []
    for (const m of inbox) {
      if (slot.raft === null || slot.paused) break
      slot.raft.step(m, this.localOf(slot))
      this.afterNodeEvent(slot)
    }
    if (slot.flushPending) this.flush(slot)
  }

  setRate (id: string, rate: number): void {
    const slot = this.slots.get(id)
    if (slot === undefined) return
    slot.clock.setRate(this.now, rate)
    if (slot.raft !== null) this.scheduleTick(slot, true)
  }

  // ----------------------------------------------------------------- views

  ids (): string[] { return [...this.slots.keys()] }

  /** Nodes running (not crashed), paused or not. */
  liveIds (): string[] { return [...this.slots.values()].filter(s => s.raft !== null).map(s => s.id) }

  isUp (id: string): boolean { const s = this.slots.get(id); return s?.raft != null && !s.paused }

  isRetired (id: string): boolean { return this.slots.get(id)?.retired ?? true }

  isCrashed (id: string): boolean { const s = this.slots.get(id); return s !== undefined && s.raft === null && !s.retired }

  raftOf (id: string): Raft | null { return this.slots.get(id)?.raft ?? null }

  localOf (slotOrId: Slot | string): number {
    const slot = typeof slotOrId === 'string' ? this.slots.get(slotOrId)! : slotOrId
    return slot.clock.local(this.now)
  }

  actingLeaders (): string[] {
    return [...this.slots.values()].filter(s => s.raft?.isActingLeader(s.clock.local(this.now)) === true).map(s => s.id)
  }

  /** A node whose role is leader and that is not paused, preferring the acting one. */
  leaderSlot (): Slot | null {
    let best: Slot | null = null
    for (const s of this.slots.values()) {
      if (s.raft === null || s.paused || s.raft.currentRole !== 'leader') continue
      if (s.raft.isActingLeader(s.clock.local(this.now))) return s
      if (best === null || s.raft.currentTerm > best.raft!.currentTerm) best = s
    }
    return best
  }

  leaderId (): string | null { return this.leaderSlot()?.id ?? null }

  /** The latest committed config in a node's log (as far as it knows), or null. */
  committedVoters (id: string): string[] | null {
    const raft = this.raftOf(id)
    if (raft === null) return null
    const log = raft.logSlice(1, raft.currentCommit)
    for (let i = log.length - 1; i >= 0; i--) {
      const e = log[i]!
      if (e.kind === 'config') return e.data.voters
    }
    return null
  }

  appliedIndex (id: string): number { return this.checker.appliedIndex(id) }

  persistedLog (id: string): readonly Entry[] { return this.slots.get(id)?.store.log ?? [] }

  // ------------------------------------------------------------ scheduling

  /** Runs `fn` after `delayMs` of real time. */
  at (delayMs: number, label: string, fn: () => void): void {
    this.queue.push({ at: this.now + Math.max(0, delayMs), seq: this.seq++, kind: 'call', label, fn })
  }

  runFor (ms: number): void { this.runUntil(this.now + ms) }

  runUntil (t: number): void {
    for (;;) {
      const ev = this.queue.peek()
      if (ev === undefined || ev.at > t) break
      this.queue.pop()
      this.now = ev.at
      this.events++
      this.dispatch(ev)
    }
    this.now = Math.max(this.now, t)
  }

  /** Runs until `pred` holds (checked after each event) or `maxMs` passes; returns the time it took, or null. */
  runUntilTrue (pred: () => boolean, maxMs: number): number | null {
    const start = this.now
    const end = this.now + maxMs
    if (pred()) return 0
    for (;;) {
      const ev = this.queue.peek()
      if (ev === undefined || ev.at > end) break
      this.queue.pop()
      this.now = ev.at
      this.events++
      this.dispatch(ev)
      if (pred()) return this.now - start
    }
    this.now = Math.max(this.now, end)
    return null
  }

  private dispatch (ev: SimEvent): void {
    switch (ev.kind) {
      case 'call':
        ev.fn()
        return
      case 'tick': {
        const slot = this.slots.get(ev.node)!
        if (ev.gen !== slot.tickGen || slot.raft === null) return
        slot.tickAt = Infinity
        if (slot.paused) return // resume() ticks first
        slot.raft.tick(this.localOf(slot))
        this.afterNodeEvent(slot)
        return
      }
      case 'flush': {
        const slot = this.slots.get(ev.node)!
        if (slot.flushPending && slot.raft !== null && !slot.paused) this.flush(slot)
        return
      }
      case 'deliver': {
        const slot = this.slots.get(ev.to)
        if (slot?.raft == null || !this.net.isUp(ev.from, ev.to)) return
        let msg: Message
        try {
          msg = parseMessage(JSON.parse(ev.data))
        } catch (err) {
          throw new SimViolation(`message from ${ev.from} failed validation: ${(err as Error).message}: ${ev.data.slice(0, 300)}`)
        }
        if (slot.paused) {
          slot.inbox.push(msg)
          return
        }
        if (this.opts.trace === true) this.log(`${ev.to} <- ${ev.from} ${describe(msg)}`)
        slot.raft.step(msg, this.localOf(slot))
        this.afterNodeEvent(slot)
      }
    }
  }

  private afterNodeEvent (slot: Slot): void {
    const raft = slot.raft
    if (raft === null) return
    if (raft.hasReady() && !slot.flushPending) {
      const async = this.opts.asyncFlush ?? 0
      if (async > 0 && this.rng.chance(async)) {
        slot.flushPending = true
        this.queue.push({ at: this.now + this.rng.range(0.05, 5), seq: this.seq++, kind: 'flush', node: slot.id })
      } else {
        slot.flushPending = true
        this.flush(slot)
      }
    }
    this.scheduleTick(slot, false)
    this.check()
  }

  private scheduleTick (slot: Slot, force: boolean): void {
    const raft = slot.raft
    if (raft === null) return
    const late = this.opts.timerLateMs ?? 0
    const real = Math.max(slot.clock.realAt(raft.wakeAt()), this.now) + 0.01 + (late > 0 ? this.rng.range(0, late) : 0)
    if (!force && real >= slot.tickAt) return
    slot.tickGen++
    slot.tickAt = real
    this.queue.push({ at: real, seq: this.seq++, kind: 'tick', node: slot.id, gen: slot.tickGen })
  }

  /** The shell's loop body: persist, then send, then apply. */
  private flush (slot: Slot): void {
    slot.flushPending = false
    const raft = slot.raft
    if (raft === null) return
    if (slot.paused) { slot.flushPending = true; return }
    const rd = raft.ready()
    const store = slot.store
    if (rd.hardState !== undefined) store.hardState = { ...rd.hardState }
    if (rd.truncateFrom !== undefined) {
      this.checker.onTruncate(slot.id, rd.truncateFrom, this.now)
      store.log.length = Math.min(store.log.length, rd.truncateFrom - 1)
    }
    for (const e of rd.append) {
      if (e.index !== store.log.length + 1) throw new SimViolation(`${slot.id} ready() appends index ${e.index} onto a persisted log ending at ${store.log.length}`)
      store.log.push(e)
    }
    if (store.hardState.term < (store.log[store.log.length - 1]?.term ?? 0)) throw new SimViolation(`${slot.id} persisted an entry of a term above its persisted term`)
    for (const m of rd.messages) this.send(m)
    if (rd.committed.length > 0) {
      for (const e of rd.committed) {
        if (store.log[e.index - 1] !== e && JSON.stringify(store.log[e.index - 1]) !== JSON.stringify(e)) throw new SimViolation(`${slot.id} applies index ${e.index}, which it has not persisted`)
      }
      this.checker.onApply(slot.id, rd.committed, this.now, raft.currentTerm)
      store.applied = rd.committed[rd.committed.length - 1]!.index
    }
  }

  private send (m: Message): void {
    this.messagesSent++
    if (this.opts.trace === true) this.log(`${m.from} -> ${describe(m)}`)
    const data = JSON.stringify(toWire(m))
    for (const delay of this.net.fate(this.netRng, m.from, m.to)) {
      this.queue.push({ at: this.now + delay, seq: this.seq++, kind: 'deliver', from: m.from, to: m.to, data })
    }
  }

  // ---------------------------------------------------------------- checks

  private check (): void {
    const views: NodeView[] = []
    for (const s of this.slots.values()) {
      const raft = s.raft
      if (raft === null) continue
      const local = s.clock.local(this.now)
      views.push({ id: s.id, acting: raft.isActingLeader(local), role: raft.currentRole, term: raft.currentTerm, commitIndex: raft.currentCommit, log: () => raft.logSlice() })
    }
    this.checker.afterEvent(views, this.now)
  }

  /** Log matching across every running node's in-memory log. */
  checkLogs (): void {
    const logs = [...this.slots.values()].filter(s => s.raft !== null).map(s => ({ id: s.id, log: s.raft!.logSlice() }))
    this.checker.checkLogMatching(logs, this.now)
  }

  /**
   * Is there a group of running, unpaused nodes, all linked both ways, that
   * holds a majority of every config any running node has? (Then Raft owes
   * us an acting leader.) Returns that group, sorted, or null.
   */
  healthyMajority (): string[] | null {
    const up = [...this.slots.values()].filter(s => s.raft !== null && !s.paused).map(s => s.id)
    const configs: string[][] = []
    for (const s of this.slots.values()) {
      if (s.raft === null) continue
      const voters = s.raft.status(this.localOf(s)).voters
      if (voters.length > 0 && !configs.some(c => c.join() === voters.join())) configs.push(voters)
    }
    if (configs.length === 0) return null
    const linked = (a: string, b: string): boolean => this.net.isUp(a, b) && this.net.isUp(b, a)
    const seen = new Set<string>()
    for (const start of up) {
      if (seen.has(start)) continue
      const group = [start]
      seen.add(start)
      for (let i = 0; i < group.length; i++) {
        for (const o of up) if (!seen.has(o) && linked(group[i]!, o)) { seen.add(o); group.push(o) }
      }
      const clique = group.every(a => group.every(b => a === b || linked(a, b)))
      if (clique && configs.every(c => c.filter(v => group.includes(v)).length > c.length / 2)) return group.sort()
    }
    return null
  }

  log (line: string): void {
    if (this.opts.trace === true) this.trace.push(`${this.now.toFixed(3).padStart(10)} ${line}`)
  }
}

function describe (m: Message): string {
  switch (m.type) {
    case 'append': return `${m.to} append t${m.term} r${m.round} prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} c=${m.commit}`
    case 'append_resp': return `${m.to} append_resp t${m.term} r${m.round} ${m.success ? `ok match=${m.matchIndex}` : `reject ${m.rejectIndex} hint=${m.hintIndex}/${m.hintTerm}`}`
    case 'prevote': case 'vote': return `${m.to} ${m.type} t${m.term} last=${m.lastLogIndex}/${m.lastLogTerm}`
    case 'prevote_resp': case 'vote_resp': return `${m.to} ${m.type} t${m.term} ${m.granted ? 'granted' : 'refused'}`
  }
}
