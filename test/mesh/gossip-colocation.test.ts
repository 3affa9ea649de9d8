/**
 * Many members on one address (several daemons on a host, pods behind one
 * SNAT) must keep hearing each other. Gossipsub's default IP-colocation
 * penalty graylists peers beyond 10 per IP within a few heartbeats; with it,
 * this test's messages from most peers never arrive.
 */
import t from 'tap'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshNode, type MeshNode } from '../../mesh/node.ts'
import { parseSwarmKey, generateSwarmKey } from '../../mesh/swarm-key.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const N = 16
const TOPIC = '/meshd/test/colocation/1'

t.test(`${N} members on 127.0.0.1 keep exchanging gossip`, async (t) => {
  const psk = parseSwarmKey(generateSwarmKey(), 'test')
  const nodes: MeshNode[] = []
  t.teardown(async () => { await Promise.all(nodes.map(async (n) => n.stop())) })
  for (let i = 0; i < N; i++) {
    const n = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), swarmKey: psk, swarmKeyFile: 'test.key', listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], maxGossipRpcBytes: 1 << 20 })
    await n.start()
    n.services.pubsub.subscribe(TOPIC)
    nodes.push(n)
  }
  for (let i = 1; i < N; i++) for (let j = 0; j < i; j++) await nodes[i]!.dial(nodes[j]!.getMultiaddrs()[0]!)
  const observer = nodes[0]!
  let heartbeats = 0
  observer.services.pubsub.addEventListener('gossipsub:heartbeat', () => { heartbeats++ })
  const heard = new Set<string>()
  observer.services.pubsub.addEventListener('message', (e) => {
    if (e.detail.type === 'signed' && new TextDecoder().decode(e.detail.data) === 'late') heard.add(e.detail.from.toString())
  })
  await waitFor(() => observer.services.pubsub.getSubscribers(TOPIC).length === N - 1, { timeoutMs: 10_000, what: 'every peer subscribed' })
  // Scores are computed on gossipsub heartbeats (1 s): let several pass.
  await waitFor(() => heartbeats >= 5, { timeoutMs: 15_000, what: 'five gossipsub heartbeats' })
  for (const n of nodes.slice(1)) await n.services.pubsub.publish(TOPIC, new TextEncoder().encode('late'))
  // Graylisted peers' messages are dropped: the wait times out (and fails) unless all are heard.
  await waitFor(() => heard.size === N - 1, { timeoutMs: 5000, what: `messages from all ${N - 1} peers (heard ${heard.size})` })
  t.pass(`every one of the ${N - 1} peers was heard after scores settled`)
})
