/**
 * /meshd/infer/1 in one process: two real libp2p nodes (TCP, pnet, noise,
 * yamux) and a simulated replica. Streams are reused one request at a time,
 * a client that goes away stops the far replica's work, a stale idle stream
 * costs nothing, and a dead member is a retryable failure.
 */
import t from 'tap'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshNode, type MeshNode } from '../../mesh/node.ts'
import { parseSwarmKey, generateSwarmKey } from '../../mesh/swarm-key.ts'
import { InferServer } from '../../mesh/infer/server.ts'
import { InferClient } from '../../mesh/infer/client.ts'
import { INFER_PROTOCOL } from '../../mesh/infer/schemas.ts'
import { startSimServer } from '../../daemon/replica/sim/server.ts'
import { ReplicaUpstream } from '../../daemon/proxy/replica-upstream.ts'
import { SlotBroker } from '../../daemon/proxy/slot-broker.ts'
import { MEMBER_BUSY, UpstreamError, type UpstreamRequest, type UpstreamResponse } from '../../mesh/infer/upstream.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import type { Teardown } from '../helpers/tmp.ts'

const quiet = { debug: () => {}, warn: () => {} }

async function setup (t: Teardown) {
  const psk = parseSwarmKey(generateSwarmKey(), 'test')
  const mk = async (): Promise<MeshNode> => {
    const n = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), swarmKey: psk, swarmKeyFile: 'test.key', listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], maxGossipRpcBytes: 1 << 20 })
    await n.start()
    return n
  }
  const a = await mk()
  const b = await mk()
  const sim = await startSimServer({ port: 0, models: ['m'], slots: 4, ttftMs: 0, tokensPerSecond: 200, maxTokens: 4 } as Parameters<typeof startSimServer>[0])
  const broker = new SlotBroker({ slots: 4, models: ['m'] }, () => {})
  broker.setOpen(true, Date.now())
  const local = new ReplicaUpstream({ selfId: b.peerId.toString(), url: () => sim.url }, { broker })
  const served: UpstreamRequest[] = []
  const serve = async (r: UpstreamRequest): Promise<UpstreamResponse> => {
    served.push(r)
    if (!broker.admit(Date.now())) throw new UpstreamError(MEMBER_BUSY, 'full', true, local.load())
    return local.request(r)
  }
  const server = new InferServer({ selfId: b.peerId.toString(), maxBodyBytes: 1 << 20 }, { node: b, serve, load: () => local.load(), log: quiet })
  await server.start()
  await a.dial(b.getMultiaddrs()[0]!)
  const client = new InferClient(a)
  t.teardown(async () => { client.close(); await local.close(); await sim.close(); await a.stop(); await b.stop() })
  return { a, b, sim, local, server, client, broker, served }
}

function chat (maxTokens: number, stream = false): UpstreamRequest {
  return {
    id: 'r', method: 'POST', path: '/v1/chat/completions', headers: [['content-type', 'application/json']], model: 'm', deadline: Date.now() + 30_000,
    body: new TextEncoder().encode(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: maxTokens, stream }))
  }
}

async function text (body: AsyncIterable<Uint8Array>): Promise<string> {
  let s = ''
  for await (const c of body) s += new TextDecoder().decode(c)
  return s
}

const inferStreams = (n: MeshNode): number => n.getConnections().flatMap((c) => c.streams).filter((s) => s.protocol === INFER_PROTOCOL).length

t.test('sequential requests reuse one stream', async (t) => {
  const { a, client, b } = await setup(t)
  for (let i = 0; i < 20; i++) {
    const up = await client.request(b.peerId, chat(2))
    t.equal(up.status, 200)
    t.match(await text(up.body), /chat\.completion/)
  }
  t.equal(inferStreams(a), 1, 'twenty requests, one stream')
})

t.test('the head\'s id reaches the replica as x-request-id, also when the entry sent no such header', async (t) => {
  const { b, client, served } = await setup(t)
  const bare = await client.request(b.peerId, { ...chat(1), id: 'from-an-older-entry' })
  await text(bare.body)
  t.same(served.at(-1)?.headers.filter(([k]) => k === 'x-request-id'), [['x-request-id', 'from-an-older-entry']], 'added from the head')
  const sent = await client.request(b.peerId, { ...chat(1), id: 'id-1', headers: [['content-type', 'application/json'], ['X-Request-Id', 'id-1']] })
  await text(sent.body)
  t.same(served.at(-1)?.headers.filter(([k]) => k.toLowerCase() === 'x-request-id'), [['X-Request-Id', 'id-1']], 'a header the entry sent is left as it is, not doubled')
})

t.test('a client that goes away frees the far replica at once; the stream is not reused', async (t) => {
  const { a, b, client, local } = await setup(t)
  const up = await client.request(b.peerId, chat(100_000, true))
  const it = up.body[Symbol.asyncIterator]()
  await it.next()
  t.equal(local.inflight, 1, 'the replica is serving')
  up.abort()
  await waitFor(() => local.inflight === 0, { timeoutMs: 1000, intervalMs: 10, what: 'the replica request to be aborted' })
  await waitFor(() => inferStreams(a) === 0, { timeoutMs: 2000, what: 'the aborted stream to go away' })
  const next = await client.request(b.peerId, chat(2))
  t.equal(next.status, 200, 'the next request opens a fresh stream')
  await text(next.body)
})

t.test('an idle stream the server closed costs nothing: the request goes on a fresh one', async (t) => {
  const { b, client, server } = await setup(t)
  await text((await client.request(b.peerId, chat(2))).body)
  server.closeIdle()
  await waitFor(() => server.activeStreams === 0, { timeoutMs: 2000, what: 'the server to close its idle stream' })
  const up = await client.request(b.peerId, chat(2))
  t.equal(up.status, 200)
  t.match(await text(up.body), /chat\.completion/)
})

t.test('a member that is gone is a retryable failure before any byte', async (t) => {
  const { b, client } = await setup(t)
  await b.stop()
  const err = await client.request(b.peerId, chat(2)).then(() => null, (e: unknown) => e)
  t.type(err, UpstreamError)
  t.equal((err as UpstreamError).retryable, true, 'the front door may try another member')
})

t.test('a full member refuses at once, says how full, and keeps the stream for the next request', async (t) => {
  const { a, b, client, broker } = await setup(t)
  const running = await Promise.all([0, 1, 2, 3].map(async () => client.request(b.peerId, chat(100_000, true))))
  t.equal(broker.busy, 4, 'four slots taken')
  const err = await client.request(b.peerId, chat(2)).then(() => null, (e: unknown) => e)
  t.type(err, UpstreamError)
  t.equal((err as UpstreamError).code, MEMBER_BUSY)
  t.equal((err as UpstreamError).retryable, true)
  t.equal((err as UpstreamError).load?.inflight, 4, 'the refusal carries the member\'s load')
  const before = inferStreams(a)
  running[0]!.abort()
  await waitFor(() => broker.busy === 3, { timeoutMs: 1000, intervalMs: 10, what: 'the aborted request to free its slot' })
  const up = await client.request(b.peerId, chat(2))
  t.equal(up.status, 200, 'a freed slot takes the next request')
  await text(up.body)
  t.ok(inferStreams(a) <= before, 'the refused exchange\'s stream was reused, not a new one opened')
  for (const r of running.slice(1)) r.abort()
})
