/**
 * A random fault schedule, fully determined by its seed: a chaos phase
 * (crashes and restarts, hung processes, partitions, one-way link cuts, clock
 * rate changes, lossy and slow networks, membership changes, a steady trickle
 * of client proposals), then a calm phase in which everything heals and the
 * cluster must converge. The checker runs on every event throughout; this
 * module adds the liveness watch and the end-of-run convergence checks.
 */
import { Cluster } from './cluster.ts'
import { SimFailure, SimViolation } from './checker.ts'
import type { NetConfig } from './network.ts'
import { Rng } from './prng.ts'

export interface ChaosOptions {
  seed: number
  /** Length of the chaos phase (virtual ms). */
  chaosMs?: number
  /** Length of the calm phase before convergence is required (virtual ms). */
  calmMs?: number
  trace?: boolean
}

export interface ChaosResult {
  seed: number
  /** Nodes that took part (initial voters and nodes added later). */
  nodes: number
  events: number
  messages: number
  terms: number
  committed: number
  actingLeaders: number
  faults: Record<string, number>
}

/** Liveness bound: a healthy majority must produce an acting leader this often. */
export function livenessBoundMs (c: Cluster): number {
  return 5 * c.timing.electionTimeoutMaxMs
}

export function runChaos (opts: ChaosOptions): ChaosResult {
  const plan = new Rng(opts.seed ^ 0x9e3779b9)
  const initialVoters = plan.pick([3, 3, 5, 5, 5, 7])
  const net: NetConfig = {
    minDelayMs: plan.range(0.2, 5),
    maxDelayMs: plan.pick([10, 30, 80, 150]),
    loss: plan.pick([0, 0, 0.01, 0.05, 0.15]),
    duplicate: plan.pick([0, 0.01, 0.05]),
    spike: plan.pick([0, 0.01, 0.05]),
    spikeMaxMs: plan.pick([100, 400, 1000])
  }
  const c = new Cluster({
    seed: opts.seed,
    voters: initialVoters,
    net,
    drift: plan.pick(['random', 'extreme', 'extreme']),
    asyncFlush: plan.pick([0, 0.3, 0.8]),
    timerLateMs: plan.pick([0, 5, 30]),
    trace: opts.trace ?? false
  })
  try {
    return chaos(c, plan, net, opts)
  } catch (err) {
    throw new SimFailure(opts.seed, err, c.trace)
  }
}

function chaos (c: Cluster, plan: Rng, net: NetConfig, opts: ChaosOptions): ChaosResult {
  const chaosMs = opts.chaosMs ?? 30_000
  const calmMs = opts.calmMs ?? 15_000
  const faults: Record<string, number> = {}
  // The order of these calls is part of the schedule: each draws from `plan`.
  watchLiveness(c)
  auditLogs(c)
  clientTraffic(c, plan)
  injectFaults(c, plan, net, chaosMs, faults)
  c.runUntil(chaosMs)
  calmAndConverge(c, net, calmMs, opts.seed)
  return {
    seed: opts.seed,
    nodes: c.ids().length,
    events: c.events,
    messages: c.messagesSent,
    terms: Math.max(0, ...c.ids().map(id => c.raftOf(id)?.currentTerm ?? 0)),
    committed: c.checker.committedMax,
    actingLeaders: c.checker.firstActing.length,
    faults
  }
}

/**
 * Liveness watch, sampled every 100 ms of virtual time: the same group
 * holding a majority must stay up and connected, on a network losing at
 * most 5% of messages, for the bound. (Safety is checked under anything;
 * liveness cannot be promised under any loss.)
 */
function watchLiveness (c: Cluster): void {
  const bound = livenessBoundMs(c)
  let healthy: { key: string, since: number } | null = null
  const watch = (): void => {
    const group = c.net.config.loss <= 0.05 ? c.healthyMajority() : null
    const key = group?.join() ?? ''
    if (group === null) {
      healthy = null
    } else {
      if (healthy?.key !== key) healthy = { key, since: c.now }
      const since = Math.max(healthy.since, c.checker.lastActingAt)
      if (c.now - since > bound) throw new SimViolation(`liveness: ${key} have been up and connected since t=${healthy.since.toFixed(0)} but no node has acted since t=${c.checker.lastActingAt.toFixed(0)} (now t=${c.now.toFixed(0)})`)
    }
    c.at(100, 'watch', watch)
  }
  c.at(100, 'watch', watch)
}

/** The logs of all nodes compared every 2 s of virtual time. */
function auditLogs (c: Cluster): void {
  const audit = (): void => { c.checkLogs(); c.at(2000, 'audit', audit) }
  c.at(2000, 'audit', audit)
}

/**
 * Client traffic: proposals to random nodes, redirected once to the hinted
 * leader, in busy spells and idle spells (when idle, a node cut off from
 * the leader keeps an up-to-date log and can win an election: the case
 * the lease must survive).
 */
function clientTraffic (c: Cluster, plan: Rng): void {
  let n = 0
  let idle = false
  const toggle = (): void => { idle = !idle; c.at(plan.exp(idle ? 6000 : 4000), 'client toggle', toggle) }
  c.at(plan.exp(4000), 'client toggle', toggle)
  const client = (): void => {
    const live = c.ids().filter(id => c.isUp(id))
    if (live.length > 0 && !idle) {
      const id = plan.pick(live)
      const r = c.propose(id, { n: n++ })
      if (r !== null && 'error' in r && r.leader !== null) c.propose(r.leader, { n: n++ })
    }
    c.at(plan.exp(300), 'client', client)
  }
  c.at(plan.exp(300), 'client', client)
}

/** Faults, as a Poisson process over the chaos phase, drawn from the weighted table. */
function injectFaults (c: Cluster, plan: Rng, net: NetConfig, chaosMs: number, faults: Record<string, number>): void {
  const table = faultTable(c, plan, net, chaosMs)
  const totalWeight = table.reduce((a, [w]) => a + w, 0)
  const fault = (): void => {
    if (c.now >= chaosMs) return
    let roll = plan.next() * totalWeight
    for (const [w, name, run] of table) {
      roll -= w
      if (roll < 0) {
        faults[name] = (faults[name] ?? 0) + 1
        c.log(`FAULT ${name}`)
        run()
        break
      }
    }
    c.at(plan.exp(1500), 'fault', fault)
  }
  c.at(plan.exp(1000), 'fault', fault)
}

/**
 * Each fault with its weight. Several are aimed at the leader, since that
 * is where lease bugs show: a leader that hangs, loses one follower, or
 * whose followers crash and come straight back must stop acting in time.
 * Restorers scheduled during chaos that fire in the calm phase must not
 * undo the calm (its heal and network already cover them).
 */
function faultTable (c: Cluster, plan: Rng, net: NetConfig, chaosMs: number): Array<[number, string, () => void]> {
  const rho = c.timing.maxDriftRate
  const members = (): string[] => c.ids().filter(id => !c.isRetired(id))
  // An operator shuts a removed node down only once its removal has
  // committed; before that the change may still be rolled back.
  const retireWhenGone = (victim: string, tries: number): void => {
    const leader = c.leaderId()
    const committed = leader === null ? null : c.committedVoters(leader)
    if (committed !== null && !committed.includes(victim)) c.retire(victim)
    else if (tries > 0) c.at(1000, `retire ${victim}`, () => retireWhenGone(victim, tries - 1))
  }
  const heal = (after: number): void => c.at(after, 'heal', () => { if (c.now < chaosMs) { c.log('HEAL'); c.net.heal() } })
  const running = (): string[] => members().filter(id => c.raftOf(id) !== null)
  /** The acting leader (or, failing that, a leader) with probability p, else a random running member. */
  const target = (p: number): string | undefined => {
    const leader = c.actingLeaders()[0] ?? c.leaderId()
    if (leader !== null && plan.chance(p)) return leader
    const ms = running()
    return ms.length === 0 ? undefined : plan.pick(ms)
  }
  return [
    [10, 'crash', () => {
      const id = target(0.6)
      if (id === undefined) return
      c.crash(id)
      c.at(plan.chance(0.9) ? plan.range(100, 8000) : chaosMs - c.now, `restart ${id}`, () => c.restart(id))
    }],
    [8, 'bounce', () => {
      // A crash and an immediate restart: the node forgets any promise it
      // held in memory, so only its start-up promise protects the lease.
      const id = target(0.2)
      if (id === undefined) return
      c.crash(id)
      c.at(plan.range(1, 400), `restart ${id}`, () => c.restart(id))
    }],
    [14, 'pause', () => {
      const id = target(0.6)
      if (id !== undefined) c.pause(id, plan.chance(0.5) ? plan.range(20, 1400) : plan.range(1400, 9000))
    }],
    [10, 'partition', () => {
      const ms = members()
      const size = plan.chance(0.5) ? plan.int(1, Math.max(2, Math.ceil(ms.length / 2))) : plan.int(1, ms.length)
      const side = ms.slice().sort(() => plan.next() - 0.5).slice(0, size)
      const leader = c.leaderId()
      if (leader !== null && plan.chance(0.5) && !side.includes(leader)) side[0] = leader
      c.log(`  side ${JSON.stringify(side)}`)
      c.net.partition([side, ms.filter(id => !side.includes(id))])
      heal(plan.range(500, 10_000))
    }],
    [5, 'one_way_cut', () => {
      const ms = members()
      if (ms.length < 2) return
      const a = plan.pick(ms)
      const b = plan.pick(ms.filter(id => id !== a))
      c.log(`  ${a}>${b}`)
      c.net.cut(a, b)
      c.at(plan.range(500, 8000), 'heal link', () => c.net.healLink(a, b))
    }],
    [8, 'leader_link', () => {
      // The leader loses one follower (one way or both): that follower times
      // out while the rest still hear the leader.
      const leader = c.leaderId()
      const others = members().filter(id => id !== leader)
      if (leader === null || others.length === 0) return
      const f = plan.pick(others)
      if (plan.chance(0.5)) c.net.cutBoth(leader, f)
      else c.net.cut(leader, f)
      c.log(`  ${leader}/${f}`)
      c.at(plan.range(500, 8000), 'heal link', () => c.net.healLink(leader, f))
    }],
    [6, 'isolate', () => {
      const id = target(1)
      if (id === undefined || members().length < 2) return
      c.net.isolate(id, members())
      heal(plan.range(500, 8000))
    }],
    [6, 'clock_rate', () => {
      c.setRate(plan.pick(c.ids()), plan.chance(0.7) ? (plan.chance(0.5) ? 1 - rho : 1 + rho) : plan.range(1 - rho, 1 + rho))
    }],
    [5, 'net_change', () => {
      c.net.config = { ...net, loss: plan.pick([0, 0.05, 0.3]), spike: plan.pick([0, 0.1]), spikeMaxMs: plan.pick([200, 1500]) }
      c.at(plan.range(500, 5000), 'net restore', () => { if (c.now < chaosMs) { c.log('NET RESTORE'); c.net.config = { ...net } } })
    }],
    [9, 'membership', () => {
      const leader = c.leaderId()
      if (leader === null) return
      const voters = c.raftOf(leader)!.status(c.localOf(leader)).voters
      if (voters.length <= 2 || (voters.length < 7 && plan.chance(0.5))) {
        c.addNode()
      } else {
        const victim = plan.chance(0.3) ? leader : plan.pick(voters)
        const r = c.changeConfig({ remove: victim })
        if (!('error' in r) && plan.chance(0.6)) c.at(plan.range(0, 6000), `retire ${victim}`, () => retireWhenGone(victim, 5))
      }
    }],
    [8, 'quiet', () => {}] // gives elections room to finish
  ]
}

/** Calm: heal everything, restart what is down, and demand convergence: an acting leader whose next entry every voter applies. */
function calmAndConverge (c: Cluster, net: NetConfig, calmMs: number, seed: number): void {
  c.net.heal()
  c.net.config = { ...net, loss: 0, spike: 0, duplicate: 0 }
  for (const id of c.ids()) {
    if (c.isCrashed(id)) c.restart(id)
    else c.resume(id)
  }
  c.runFor(calmMs)
  const leader = c.actingLeaders()[0] ?? null
  if (leader === null) throw new SimViolation(`liveness: no acting leader ${calmMs} ms after everything healed (t=${c.now.toFixed(0)})`)
  const r = c.propose(leader, { marker: seed })
  if (r === null || 'error' in r) throw new SimViolation(`acting leader ${leader} refused a proposal: ${JSON.stringify(r)}`)
  c.runFor(3 * c.timing.heartbeatMs)
  const voters = c.raftOf(leader)?.status(c.localOf(leader)).voters ?? []
  for (const id of voters) {
    if (c.raftOf(id) === null) continue
    if (c.appliedIndex(id) < r.index) throw new SimViolation(`convergence: voter ${id} applied ${c.appliedIndex(id)} < ${r.index} after calm (t=${c.now.toFixed(0)})`)
  }
  c.checkLogs()
}
