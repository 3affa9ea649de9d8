/**
 * Garbage on the heartbeat topic: a rogue peer holding the swarm key (and
 * speaking the cluster's sync protocol, so the cluster gate lets it in)
 * publishes malformed, wrong-schema, spoofed and oversized heartbeats. Every
 * daemon must reject and count them, list nothing from them, and keep running.
 */
import t from 'tap'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { tempDir } from '../helpers/tmp.ts'
import { startChain, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { createMeshNode } from '../../mesh/node.ts'
import { readSwarmKey } from '../../mesh/swarm-key.ts'
import { heartbeatTopic, syncProtocol } from '../../mesh/topics.ts'

const enc = new TextEncoder()

t.test('garbage on the heartbeat topic is rejected, counted, and harms no one', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const nodes = await startChain(t, root, 3, { swarmKeyFile })
  const topic = heartbeatTopic('test')
  for (const n of nodes) {
    await waitFor(async () => (await n.status()).members.filter((m) => m.state === 'alive').length === 3, { timeoutMs: 10_000, what: `${n.spec.name} to see all three alive` })
  }

  const rogue = await createMeshNode({
    privateKey: await generateKeyPair('Ed25519'),
    swarmKey: readSwarmKey(swarmKeyFile),
    swarmKeyFile,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    maxGossipRpcBytes: 4 << 20
  })
  t.teardown(async () => { await rogue.stop() })
  await rogue.handle(syncProtocol('test'), async (stream) => { stream.abort(new Error('rogue')) })
  await rogue.start()
  rogue.services.pubsub.subscribe(topic)
  for (const n of nodes) await rogue.dial(multiaddr(n.joinAddr))
  await waitFor(() => rogue.services.pubsub.getSubscribers(topic).length === nodes.length, { timeoutMs: 10_000, what: 'the daemons to be known as subscribers' })

  const valid = (await nodes[0]!.status()).members[0]!
  const spoofed = {
    v: 1, cluster: 'test', id: valid.id, name: 'spoof', incarnation: 99, seq: 1, sent_at: Date.now(), version: 'x', state: 'left', voter: true,
    provider: 'static', region: 'local', spot: false, cost_per_hour: 0, addrs: [], http: null, load: { cpu: 0, mem: 0 }, replica: null, instance: null
  }
  const payloads: Array<[string, Uint8Array]> = [
    ['malformed', enc.encode('{not json')],
    ['schema', enc.encode(JSON.stringify({ v: 1, hello: 'world' }))],
    ['schema', enc.encode(JSON.stringify({ ...spoofed, v: 2 }))],
    ['spoofed', enc.encode(JSON.stringify(spoofed))],
    ['wrong_cluster', enc.encode(JSON.stringify({ ...spoofed, id: rogue.peerId.toString(), cluster: 'other' }))],
    ['oversized', enc.encode(JSON.stringify({ ...spoofed, id: rogue.peerId.toString(), name: 'x'.repeat(100 * 1024) }))],
    ['malformed', new Uint8Array([0xff, 0xfe, 0x00, 0x01])]
  ]
  for (const [, data] of payloads) await rogue.services.pubsub.publish(topic, data)

  const expected: Record<string, number> = {}
  for (const [reason] of payloads) expected[reason] = (expected[reason] ?? 0) + 1
  for (const n of nodes) {
    await waitFor(async () => {
      for (const [reason, count] of Object.entries(expected)) {
        if ((await n.metric('meshd_gossip_rejected_total', { topic: 'heartbeat', reason })) < count) return false
      }
      return true
    }, { timeoutMs: 10_000, what: `${n.spec.name} to count every rejection by reason` })
    t.pass(`${n.spec.name} rejected and counted all ${payloads.length} bad messages`)
  }

  for (const n of nodes) {
    t.ok(n.running, `${n.spec.name} is still running`)
    const s = await n.status()
    t.equal(s.members.length, 3, `${n.spec.name} lists only the three daemons`)
    t.ok(s.members.every((m) => m.state === 'alive'), `${n.spec.name}: the spoofed "left" changed nobody's state`)
    t.notOk(s.members.some((m) => m.id === rogue.peerId.toString()), `${n.spec.name} does not list the rogue`)
  }
})
