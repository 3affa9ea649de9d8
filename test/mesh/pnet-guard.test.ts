/**
 * The private network's guard (mesh/pnet-guard.ts): two real libp2p nodes
 * over loopback TCP. With another swarm key the dial fails at once with a
 * message that names the key file, and both sides report the refusal; with
 * the same key nothing changes. Without the guard the dial mostly times out
 * after 5 s and neither side says why (issue 11, item 3).
 */
import t, { type Test } from 'tap'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshNode, type MeshNode } from '../../mesh/node.ts'
import { parseSwarmKey, generateSwarmKey } from '../../mesh/swarm-key.ts'
import { checkHeader, isSwarmKeyMismatch, MSS_HEADER, type PnetRefusal } from '../../mesh/pnet-guard.ts'

t.test('checkHeader: the multistream-select header, byte by byte and across chunks', async (t) => {
  t.same(checkHeader(MSS_HEADER, 0), { verdict: 'ok', seen: 20 })
  t.same(checkHeader(MSS_HEADER.subarray(0, 7), 0), { verdict: 'pending', seen: 7 })
  t.same(checkHeader(MSS_HEADER.subarray(7), 7), { verdict: 'ok', seen: 20 })
  const withMore = new Uint8Array([...MSS_HEADER, 7, 1, 2, 3])
  t.same(checkHeader(withMore, 0), { verdict: 'ok', seen: 20 }, 'bytes after the header are not looked at')
  t.same(checkHeader(new Uint8Array([0x13, 0x2f, 0x00]), 0), { verdict: 'mismatch', seen: 2 })
  t.same(checkHeader(new Uint8Array([0x00, 0x20]), 0).verdict, 'mismatch', 'noise where the header should be')
  t.same(checkHeader(new Uint8Array([]), 5), { verdict: 'pending', seen: 5 })
})

interface Side { node: MeshNode, refusals: PnetRefusal[] }

async function side (t: Test, keyText: string, keyFile: string): Promise<Side> {
  const refusals: PnetRefusal[] = []
  const node = await createMeshNode({
    privateKey: await generateKeyPair('Ed25519'),
    swarmKey: parseSwarmKey(keyText, keyFile),
    swarmKeyFile: keyFile,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    maxGossipRpcBytes: 1 << 20,
    onRefused: (r) => { refusals.push(r) }
  })
  t.teardown(async () => { await node.stop() })
  await node.start()
  return { node, refusals }
}

t.test('another swarm key: refused at once on both sides, the dial names the key file', async (t) => {
  // Repeated: the noise that a wrong key decrypts to differs every time.
  for (let i = 0; i < 10; i++) {
    const listener = await side(t, generateSwarmKey(), '/etc/meshd/mesh-a.key')
    const dialer = await side(t, generateSwarmKey(), '/etc/meshd/mesh-b.key')
    const started = performance.now()
    const err = await dialer.node.dial(listener.node.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) }).then(() => null, (e: Error) => e)
    const ms = performance.now() - started
    t.ok(err !== null && isSwarmKeyMismatch(err), `run ${i}: the dial fails as a key mismatch (${err?.message ?? 'it succeeded'})`)
    t.match(err?.message, /different swarm key than \/etc\/meshd\/mesh-b\.key/, 'the message names this node\'s key file')
    t.ok(ms < 2000, `run ${i}: without waiting for a timeout (${Math.round(ms)} ms)`)
    t.match(dialer.refusals, [{ direction: 'outbound', reason: 'swarm_key', remoteAddr: /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/ }], 'the dialer reports it once')
    t.equal(dialer.refusals.length, 1)
    // The listener's verdict may land a moment after the dialer's error.
    const deadline = Date.now() + 2000
    while (listener.refusals.length === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
    t.match(listener.refusals, [{ direction: 'inbound', reason: 'swarm_key', remoteAddr: /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/ }], 'the listener reports it once, with the dialer\'s address')
    await Promise.all([listener.node.stop(), dialer.node.stop()])
  }
})

t.test('the same swarm key: connects, streams work, no refusal', async (t) => {
  const key = generateSwarmKey()
  const a = await side(t, key, 'a.key')
  const b = await side(t, key, 'b.key')
  const conn = await b.node.dial(a.node.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })
  t.equal(conn.remotePeer.toString(), a.node.peerId.toString())
  const rtt = await b.node.services.ping.ping(a.node.peerId)
  t.ok(rtt >= 0, 'a ping crosses the connection after the guard has stepped aside')
  t.same(a.refusals, [])
  t.same(b.refusals, [])
})
