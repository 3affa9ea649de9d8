/**
 * The burst service's cycle (daemon/leader/service.ts) with stubs: a leader
 * gate whose commits apply to a real LedgerReplica, fake providers, no mesh.
 *
 *  - decide → commit → act: no provider call for a key before the entry that
 *    records it is committed (the ledger already holds the record when the
 *    create arrives);
 *  - a failed provider call is recorded as a failure, committed, and the
 *    request still gets its answer;
 *  - a lease lost mid-cycle: no provider call once the gate says no.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { FakeProvider } from '../../providers/fake/index.ts'
import { InsufficientCapacityError, QuotaError, type Instance, type LaunchRequest, type Offering } from '../../providers/types.ts'
import { BurstService, type LeaderGate } from '../../daemon/leader/service.ts'
import { LedgerReplica, type LedgerCommand } from '../../daemon/leader/ledger-replica.ts'
import { getRecord } from '../../daemon/leader/ledger/ledger.ts'
import type { IntentEntry, LaunchedEntry, LedgerEntry } from '../../daemon/leader/ledger/entries.ts'
import { offering, policy, provider } from './fixtures.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const quiet = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} }

/** The election as the service sees it: commits take a moment, then apply to the ledger on "every node". */
class Gate implements LeaderGate {
  acting = true
  readonly committed: LedgerEntry[][] = []
  /** Called right after a command is committed and applied. */
  afterCommit: () => void = () => {}
  private index = 0
  private readonly ledger: LedgerReplica

  constructor (ledger: LedgerReplica) {
    this.ledger = ledger
  }

  isActingLeader (): boolean { return this.acting }
  status (): { term: number } { return { term: 1 } }

  async propose (command: unknown): Promise<unknown> {
    await sleep(20)
    if (!this.acting) throw new Error('not the leader')
    this.index += 1
    this.ledger.apply(command, this.index)
    this.committed.push((command as LedgerCommand).entries)
    this.afterCommit()
    return this.index
  }
}

/** A fake provider that notes, at each create, what the committed ledger says of the key. */
class WatchedProvider extends FakeProvider {
  readonly seenAtCreate: string[] = []
  onCreate: (req: LaunchRequest) => void = () => {}
  ledger!: LedgerReplica

  override async create (req: LaunchRequest): Promise<Instance> {
    this.seenAtCreate.push(getRecord(this.ledger.state, req.key)?.state ?? 'not in the ledger')
    this.onCreate(req)
    return super.create(req)
  }
}

const spot = (zone: string): Offering => offering('aws', 'aws', 0.2, { zone, instanceType: 'c7a.4xlarge', spot: true })

function setup (): { service: BurstService, gate: Gate, aws: WatchedProvider, ledger: LedgerReplica, counted: string[] } {
  const counted: string[] = []
  const ledger = new LedgerReplica(quiet)
  const gate = new Gate(ledger)
  const aws = new WatchedProvider({ name: 'aws', kind: 'aws', cluster: 'test', offerings: [spot('us-east-1a'), spot('us-east-1b')], now: Date.now })
  aws.ledger = ledger
  const p = policy({ burst: { costBudget: 5 }, providers: [provider('aws', 'aws', { maxInstances: 4, spot: true })] })
  const service = new BurstService({ selfId: 'self', policy: p, providerTimeoutMs: 5000 }, {
    election: gate,
    ledger,
    membership: { members: () => [] },
    providers: new Map([['aws', aws]]),
    ctl: { call: async () => { throw new Error('no members in this test') } },
    log: quiet,
    metrics: {
      decided: (d) => { counted.push(`decided ${d.kind} ${d.outcome} ${d.reason}`) },
      launched: (p) => { counted.push(`launched ${p}`) },
      failed: (p, error) => { counted.push(`failed ${p} ${error}`) }
    }
  })
  return { service, gate, aws, ledger, counted }
}

const entriesOf = (gate: Gate, type: LedgerEntry['type']): LedgerEntry[] => gate.committed.flat().filter((e) => e.type === type)

t.test('decide → commit → act: every create comes after its intent is committed', async (t) => {
  const { service, gate, aws, ledger } = setup()
  t.teardown(() => { service.stop() })
  const answer = await service.request({ kind: 'burst', body: { id: 'r1', count: 2 } })
  t.equal(answer.decision, 'granted')
  await service.settled()
  await waitFor(() => entriesOf(gate, 'instance.launched').length === 2, { timeoutMs: 5000, what: 'both launches recorded' })
  t.equal(aws.callsOf('create').length, 2, 'two creates')
  t.same(aws.seenAtCreate, ['provisioning', 'provisioning'], 'the ledger held each intent, committed, when its create was sent')
  t.equal(gate.committed[0]!.filter((e) => e.type === 'instance.intent').length, 2, 'the first commit carries the intents')
  for (const key of answer.instances) t.equal(getRecord(ledger.state, key)?.id !== null, true, `${key} has its instance id`)
})

t.test('a failed provider call is recorded as a failure, nothing lost', async (t) => {
  const { service, gate, aws, ledger, counted } = setup()
  t.teardown(() => { service.stop() })
  aws.failNext('create', new QuotaError('aws', 'vCPU quota exceeded'))
  const answer = await service.request({ kind: 'burst', body: { id: 'r1', count: 1 } })
  t.equal(answer.decision, 'granted', 'the request got its answer')
  await service.settled()
  const key = answer.instances[0]!
  await waitFor(() => getRecord(ledger.state, key)?.state === 'failed', { timeoutMs: 5000, what: 'the failure committed' })
  const failed = entriesOf(gate, 'instance.state').find((e) => e.type === 'instance.state' && e.key === key && e.state === 'failed')
  t.match(failed, { error: { code: 'quota' }, reason: /vCPU quota exceeded/ }, 'the failure says why')
  t.equal(aws.alive().length, 0, 'nothing runs')
  t.equal(aws.callsOf('create').length, 1, 'a quota error is not retried on the fallback')
  t.same(counted, ['decided burst granted within_limits', 'failed aws quota'], 'counted: the decision once committed, the failure by provider and error kind')
})

t.test('a lease lost after the decision commits: no provider call', async (t) => {
  const { service, gate, aws } = setup()
  t.teardown(() => { service.stop() })
  gate.afterCommit = () => { gate.acting = false }
  const answer = await service.request({ kind: 'burst', body: { id: 'r1', count: 1 } })
  t.equal(answer.decision, 'granted', 'the committed decision is answered')
  await service.settled()
  t.equal(aws.callsOf('create').length, 0, 'no create once the lease is gone')
  t.equal(gate.committed.length, 1, 'nothing more proposed')
})

t.test('a lease lost after a terminate decision commits: no delete', async (t) => {
  const { service, gate, aws, ledger } = setup()
  t.teardown(() => { service.stop() })
  const launched = await service.request({ kind: 'burst', body: { id: 'r1', count: 1 } })
  await service.settled()
  await waitFor(() => getRecord(ledger.state, launched.instances[0]!)?.id != null, { timeoutMs: 5000, what: 'the launch recorded' })
  gate.afterCommit = () => { gate.acting = false }
  const answer = await service.request({ kind: 'terminate', body: { id: 't1', count: 1 } })
  t.equal(answer.granted, 1, 'the terminate was decided and committed')
  await service.settled()
  t.equal(getRecord(ledger.state, launched.instances[0]!)?.state, 'terminating')
  t.equal(aws.callsOf('delete').length, 0, 'no delete once the lease is gone')
  t.equal(aws.alive().length, 1, 'the next leader terminates it (the ledger says terminating)')
})

t.test('a lease lost between two offerings: no fallback is tried', async (t) => {
  const { service, gate, aws } = setup()
  t.teardown(() => { service.stop() })
  aws.failNext('create', new InsufficientCapacityError('aws', 'no spot capacity'))
  aws.onCreate = () => { gate.acting = false }
  const answer = await service.request({ kind: 'burst', body: { id: 'r1', count: 1 } })
  t.equal(answer.decision, 'granted')
  await service.settled()
  t.equal(aws.callsOf('create').length, 1, 'the first offering only: the fallback would have been sent without a lease')
  t.equal(gate.committed.length, 1, 'no outcome proposed without the lease')
})

t.test('with the lease, a capacity error falls back to the other zone and records both', async (t) => {
  const { service, gate, aws, ledger, counted } = setup()
  t.teardown(() => { service.stop() })
  aws.failNext('create', new InsufficientCapacityError('aws', 'no spot capacity'))
  const answer = await service.request({ kind: 'burst', body: { id: 'r1', count: 1 } })
  await service.settled()
  const key = answer.instances[0]!
  await waitFor(() => getRecord(ledger.state, key)?.id != null, { timeoutMs: 5000, what: 'the launch recorded' })
  t.equal(aws.callsOf('create').length, 2, 'the fallback was tried')
  const intent = entriesOf(gate, 'instance.intent')[0] as IntentEntry
  const launched = entriesOf(gate, 'instance.launched')[0] as LaunchedEntry
  t.match(launched, { key, refused: [/us-east-1/] }, 'the refused offering is recorded with the launch')
  t.not(launched.offering?.zone, intent.offering.zone, 'launched in the other zone')
  t.same(counted, ['decided burst granted within_limits', 'failed aws insufficient_capacity', 'launched aws'], 'counted: each create call, the refused one too')
})
