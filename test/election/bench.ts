/**
 * A tiny synchronous bench for the Raft state machine driven by hand:
 * delivers messages in order (with optional cut links and drops), drains
 * each node's Ready like a shell, and advances a shared clock in 10 ms steps.
 * Shared by the rule-by-rule tests (raft.test.ts, membership-exit.test.ts).
 */
import { Raft } from '../../mesh/election/raft/raft.ts'
import { DEFAULT_TIMING } from '../../mesh/election/raft/timing.ts'
import type { Entry, HardState, Message, Ready } from '../../mesh/election/raft/types.ts'

export class Bench {
  readonly nodes = new Map<string, Raft>()
  readonly disk = new Map<string, { hs: HardState, log: Entry[], applied: Entry[] }>()
  readonly cut = new Set<string>()
  readonly sent: Message[] = []
  /** Messages to lose on the way. */
  drop: (m: Message) => boolean = () => false
  now = 0

  add (id: string, opts: { bootstrap?: string[], random?: number } = {}): Raft {
    const disk = this.disk.get(id) ?? { hs: { term: 0, votedFor: null }, log: [], applied: [] }
    this.disk.set(id, disk)
    const r = opts.random ?? 0.1 * (this.nodes.size + 1)
    const raft = new Raft({ id, hardState: { ...disk.hs }, log: disk.log.slice(), timing: DEFAULT_TIMING, random: () => r, now: this.now, applied: disk.applied.length })
    if (opts.bootstrap !== undefined) raft.bootstrap(opts.bootstrap)
    this.nodes.set(id, raft)
    return raft
  }

  get (id: string): Raft { return this.nodes.get(id)! }

  /** Drains every node's Ready the way a shell does and returns the messages. */
  drain (): Message[] {
    const out: Message[] = []
    for (const [id, raft] of this.nodes) out.push(...this.persist(id, raft.ready()))
    return out
  }

  persist (id: string, rd: Ready): Message[] {
    const disk = this.disk.get(id)!
    if (rd.hardState !== undefined) disk.hs = rd.hardState
    if (rd.truncateFrom !== undefined) disk.log.length = rd.truncateFrom - 1
    disk.log.push(...rd.append)
    disk.applied.push(...rd.committed)
    return rd.messages
  }

  /** Delivers messages until the cluster is quiet. */
  settle (): void {
    let queue = this.drain()
    for (let rounds = 0; queue.length > 0 && rounds < 1000; rounds++) {
      const next: Message[] = []
      for (const m of queue) {
        this.sent.push(m)
        const to = this.nodes.get(m.to)
        if (to === undefined || this.cut.has(`${m.from}>${m.to}`) || this.drop(m)) continue
        to.step(m, this.now)
        next.push(...this.persist(m.to, to.ready()))
      }
      queue = next
    }
  }

  /** Advances time in 10 ms steps, ticking every node and settling. */
  advance (ms: number): void {
    const end = this.now + ms
    while (this.now < end) {
      this.now = Math.min(end, this.now + 10)
      for (const raft of this.nodes.values()) raft.tick(this.now)
      this.settle()
    }
  }

  isolate (id: string): void {
    for (const o of this.nodes.keys()) if (o !== id) { this.cut.add(`${id}>${o}`); this.cut.add(`${o}>${id}`) }
  }

  leaders (): string[] { return [...this.nodes].filter(([, r]) => r.currentRole === 'leader').map(([id]) => id) }
}

export function three (): Bench {
  const b = new Bench()
  for (const id of ['a', 'b', 'c']) b.add(id, { bootstrap: ['a', 'b', 'c'] })
  return b
}
