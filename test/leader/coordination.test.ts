/**
 * Coordination on leader changes (daemon/leader/coordination.ts), with a stub
 * election, a stub control protocol and a fake provider: becoming the leader
 * starts the leader's cycle (it observes the providers), losing it stops the
 * cycle and answers the requests waiting here at once.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { configSchema } from '../../daemon/config/schema.ts'
import { Coordination, type CoordinationLog, type ElectionPort } from '../../daemon/leader/coordination.ts'
import type { ElectionEvents, ElectionHeartbeat, RemovalResult, ResetResult } from '../../mesh/election/service.ts'
import type { LeaveView } from '../../mesh/election/leave.ts'
import { CtlError, type CtlHandler, type CtlRequest } from '../../mesh/ctl/rpc.ts'
import { FakeProvider } from '../../providers/fake/index.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const SELF = 'self-peer'

class StubElection extends EventEmitter<ElectionEvents> implements ElectionPort {
  acting = false
  term = 0
  leader: string | null = null
  /** Proposals never commit unless a test resolves them. */
  readonly proposals: unknown[] = []

  async start (): Promise<void> {}
  async stop (): Promise<void> {}
  isActingLeader (): boolean { return this.acting }
  status (): ReturnType<ElectionPort['status']> {
    return { term: this.term, group: 'g', role: this.acting ? 'leader' : 'follower', voters: [SELF], acting: this.acting, reason: null }
  }

  reportedLeader (): string | null { return this.leader }
  heartbeat (): ElectionHeartbeat { return { group: 'g', term: this.term, leader: this.leader, role: 'follower', voters: 1, commit: 0 } }
  async removeVoter (): Promise<RemovalResult> { return { ok: false, code: 'invalid', reason: 'stub' } }
  leaveView (): LeaveView { return { group: 'g', voters: [SELF], configCommitted: true, self: SELF, role: 'follower', leader: this.leader } }
  forceReset (): ResetResult { return { ok: false, reason: 'stub' } }
  async propose (command: unknown): Promise<unknown> {
    this.proposals.push(command)
    return new Promise(() => {})
  }

  /** What the real election does on a change: the new leader, then the event. */
  change (leader: string | null, term: number): void {
    this.leader = leader
    this.term = term
    this.acting = leader === SELF
    this.emit('leader:change', leader, term)
  }
}

const log: CoordinationLog = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {}, child: () => log }

function setup (): { coordination: Coordination, election: StubElection, provider: FakeProvider } {
  const config = configSchema.parse({ cluster: 'test', burst: { check_interval: '1s' } })
  const election = new StubElection()
  const provider = new FakeProvider({ name: 'fake', cluster: 'test', now: Date.now })
  const handlers = new Map<CtlRequest['type'], CtlHandler>()
  const coordination = new Coordination(config, SELF, {
    membership: { members: () => [] },
    ctl: {
      start: async () => {},
      stop: async () => {},
      handle: (type, h) => { handlers.set(type, h) },
      call: async () => { throw new CtlError('unreachable', 'no mesh in this test') }
    },
    election,
    providers: new Map([['fake', provider]]),
    log,
    drain: () => {},
    retire: () => {},
    activity: () => ({ busy: 0, lastAt: Date.now() })
  })
  return { coordination, election, provider }
}

t.test('becoming the leader starts the cycle', async (t) => {
  const { coordination, election, provider } = setup()
  t.teardown(async () => { await coordination.stop() })
  t.equal(coordination.burst?.leading, false, 'a follower runs no cycle')
  election.change('other-peer', 1)
  t.equal(coordination.burst?.leading, false, 'another leader: still none')
  election.change(SELF, 2)
  t.equal(coordination.burst?.leading, true, 'the leader runs the cycle')
  await waitFor(() => provider.callsOf('list').length > 0 && provider.callsOf('offerings').length > 0, { timeoutMs: 3000, what: 'the new leader observing its providers' })
  t.pass('the first cycle observed the providers')
})

t.test('losing the leadership stops the cycle and answers the waiting requests', async (t) => {
  const { coordination, election, provider } = setup()
  t.teardown(async () => { await coordination.stop() })
  election.change(SELF, 1)
  // A request whose decision never commits: it waits on this leader.
  const pending = coordination.requestBurst({ count: 1 })
  await waitFor(() => election.proposals.length > 0, { timeoutMs: 3000, what: 'the decision proposed' })
  election.change('other-peer', 2)
  t.equal(coordination.burst?.leading, false, 'the cycle stopped')
  const late = new Promise((_resolve, reject) => { setTimeout(() => { reject(new Error('still waiting after 2 s')) }, 2000).unref() })
  await t.rejects(Promise.race([pending, late]), { code: 'not_leader' }, 'the waiting request is answered at once, not after its timeout')
  // Nothing observes the providers any more: wait past one check_interval (1 s).
  const lists = provider.callsOf('list').length
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(provider.callsOf('list').length, lists, 'no cycle ran after the leadership was lost')
})
