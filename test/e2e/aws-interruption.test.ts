/**
 * A spot interruption under streaming load, on (fake) EC2: two spot burst
 * nodes (kept by the autoscaler: min_cloud_instances 2) serve beside three
 * voters; streaming chat completions (the official
 * openai client) go through every voter's front door all along. One node
 * gets an interruption notice on its instance metadata with its termination
 * time 20 s ahead — EC2 gives two minutes; the time is compressed here, and
 * nothing in the path depends on the length but the drain deadline, which is
 * derived from the notice. The fake EC2 terminates the instance at that
 * time (SIGTERM, then SIGKILL), as EC2 does.
 *
 * Asserted: the leader launches a replacement that is ready before the
 * interrupted node's termination time, in another zone; no request fails.
 * And a rebalance recommendation: a replacement first, then the warned node
 * drained and terminated by the leader.
 */
import t from 'tap'
import { tempDir } from '../helpers/tmp.ts'
import { netnsMachinesAvailable } from '../helpers/fake-ec2/index.ts'
import { interruptionConfig, interruptUnderLoad, liveInstances, startAwsMesh } from '../helpers/aws-mesh.ts'
import { testBundle, type Bundle } from '../helpers/test-bundle.ts'
import { waitReadyBurst } from '../helpers/burst.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const skip = netnsMachinesAvailable()
const NOTICE_MS = 20_000

let bundle: Bundle | null = null
t.before(async () => {
  if (skip !== false) return
  bundle = await testBundle()
})

t.test('an interruption notice under streaming load: a replacement is ready before the node goes; no request fails', { skip }, async (t) => {
  const { fake, nodes } = await startAwsMesh(t, tempDir(t), {
    bundle: bundle!,
    // Both zones cost the same: the two nodes spread over them, and the replacement has a choice.
    spot: { 'us-east-1a': 0.03, 'us-east-1b': 0.03 },
    config: interruptionConfig(2)
  })
  await waitReadyBurst(nodes[0]!, 2)
  const run = await interruptUnderLoad({ fake, nodes }, { noticeMs: NOTICE_MS, notice: true })
  t.ok(run.replacementReadyMs !== null && run.replacementReadyMs < NOTICE_MS, `replacement ready ${run.replacementReadyMs} ms after the notice, before the termination time (${NOTICE_MS} ms); the drained node was gone after ${run.goneMs} ms`)
  t.match(run.replacement, { market: 'spot' }, 'the replacement is spot')
  t.not(run.replacement?.zone, run.victimZone, `in another zone than the interrupted one (${run.victimZone} → ${run.replacement?.zone})`)
  t.same(run.failures, [], `no request failed (${run.ok} served: ${[...run.servedBy.entries()].map(([k, v]) => `${k.slice(-6)} ${v}`).join(', ')})`)
  t.equal(liveInstances(fake).length, 2, 'two instances live again: the survivor and the replacement')
})

t.test('a rebalance recommendation: a replacement is launched, and once it is ready the warned node drains and goes', { skip }, async (t) => {
  const { fake, nodes } = await startAwsMesh(t, tempDir(t), {
    bundle: bundle!,
    spot: { 'us-east-1a': 0.03, 'us-east-1b': 0.03 },
    config: interruptionConfig(2)
  })
  const before = await waitReadyBurst(nodes[0]!, 2)
  const warned = before[0]!
  fake.rebalance(warned.instance!.id)
  const { value: replacement } = await waitFor(async () => {
    const fresh = (await nodes[0]!.status()).members.find((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true && !before.some((b) => b.id === m.id))
    return fresh ?? null
  }, { timeoutMs: 120_000, what: 'a replacement member ready' })
  t.pass(`replacement ${replacement.name} ready`)
  const seen = (await nodes[0]!.status()).members.find((m) => m.id === warned.id)
  t.match(seen?.notice, { kind: 'rebalance' }, 'the warned member carries its notice')
  await waitFor(() => fake.instance(warned.instance!.id).state === 'terminated', { timeoutMs: 120_000, what: 'the warned instance drained and terminated' })
  t.equal(liveInstances(fake).length, 2, 'two instances: the other one and the replacement')
  t.equal(fake.instance(warned.instance!.id).stateReason?.code, 'Client.UserInitiatedShutdown', 'terminated by the leader, not reclaimed by EC2')
})
