/**
 * Routing with many entry nodes, end to end: real daemons, the official
 * `openai` client. Heartbeats are slowed to 10 s, so any entry node's view of
 * a remote member is stale for the whole test: what keeps capacity in use
 * is the member's own authority over its slots (a full member refuses at
 * once; a freed slot is offered to the entry whose request waits longest).
 */
import t from 'tap'
import OpenAI from 'openai'
import { tempDir } from '../helpers/tmp.ts'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const HEARTBEAT_MS = 10_000

t.test('a slot freed at a member goes at once to a request waiting at another entry node', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const replica = { models: ['m'], slots: 1, command: 'sim', readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1 }, sim: { ttft_ms: 10, tokens_per_second: 50, max_tokens: 4 } }
  const member = await DaemonProcess.start(t, root, { name: 'member', swarmKeyFile, heartbeatMs: HEARTBEAT_MS, config: { replica } })
  const a = await DaemonProcess.start(t, root, { name: 'entry-a', swarmKeyFile, heartbeatMs: HEARTBEAT_MS })
  const b = await DaemonProcess.start(t, root, { name: 'entry-b', swarmKeyFile, heartbeatMs: HEARTBEAT_MS })
  await a.call('join', { addrs: [member.joinAddr] })
  await b.call('join', { addrs: [member.joinAddr] })
  for (const d of [a, b]) {
    await waitFor(async () => (await d.status()).members.some((m) => m.id === member.peerId && m.state === 'alive' && m.replica?.ready === true),
      { timeoutMs: 30_000, what: `${d.spec.name} to see the member's replica ready` })
  }
  const viaA = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 })
  const viaB = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 })

  // A takes the member's only slot with a long stream.
  const ac = new AbortController()
  const long = await viaA.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'long' }], stream: true, max_tokens: 30_000 }, { signal: ac.signal })
  const it = long[Symbol.asyncIterator]()
  await it.next()

  // B's request waits: refused by the full member if B's view (a heartbeat old) showed the slot free.
  const short = viaB.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'short' }], max_tokens: 2 }).withResponse()
  await waitFor(async () => (await b.metric('meshd_entry_queue_length')) === 1, { timeoutMs: 5000, intervalMs: 20, what: 'the request to wait at entry B' })

  // A's client goes away: the member frees the slot and offers it to B, long before the next heartbeat.
  const freedAt = performance.now()
  ac.abort()
  await it.return?.()
  const { data, response } = await short
  const ms = performance.now() - freedAt
  t.equal(data.object, 'chat.completion')
  t.equal(response.headers.get('x-meshd-served-by'), member.peerId)
  t.ok(ms < HEARTBEAT_MS / 4, `B's waiting request was served ${Math.round(ms)} ms after the slot was freed (heartbeats every ${HEARTBEAT_MS / 1000} s)`)
  t.equal(await b.metric('meshd_entry_queue_length'), 0, 'nothing waits at B any more')
})

t.test('requests waiting at several entry nodes are served oldest first, whichever node they entered at', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  // One slot, answers of ~200 ms: requests queue, and the order they run in is the order they finish in.
  const replica = { models: ['m'], slots: 1, command: 'sim', readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1 }, sim: { ttft_ms: 0, tokens_per_second: 20, max_tokens: 4 } }
  const member = await DaemonProcess.start(t, root, { name: 'member', swarmKeyFile, heartbeatMs: HEARTBEAT_MS, config: { replica } })
  const entries = [
    await DaemonProcess.start(t, root, { name: 'entry-a', swarmKeyFile, heartbeatMs: HEARTBEAT_MS }),
    await DaemonProcess.start(t, root, { name: 'entry-b', swarmKeyFile, heartbeatMs: HEARTBEAT_MS })
  ]
  for (const d of entries) await d.call('join', { addrs: [member.joinAddr] })
  for (const d of entries) {
    await waitFor(async () => (await d.status()).members.some((m) => m.id === member.peerId && m.replica?.ready === true),
      { timeoutMs: 30_000, what: `${d.spec.name} to see the member's replica ready` })
  }
  const clients = entries.map((d) => new OpenAI({ baseURL: `${d.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 }))
  const finished: string[] = []
  const sent: Array<Promise<unknown>> = []
  // Alternate entry nodes; each request is sent once the one before it waits (or runs), so arrival order is known.
  // A long stream holds the slot (its first chunk proves it runs) while five
  // requests arrive, two at A, two at B, one at A, each sent once the one
  // before it waits, so the arrival order is known (taking turns between the
  // entries would give 1 3 2 4 5); then the stream is cut and the five run one by one.
  const at = [0, 0, 0, 1, 1, 0]
  const ac = new AbortController()
  const holder = await clients[0]!.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hold' }], stream: true, max_tokens: 30_000 }, { signal: ac.signal })
  const holderIt = holder[Symbol.asyncIterator]()
  await holderIt.next()
  for (let i = 1; i <= 5; i++) {
    const tag = `${i}`
    const entry = entries[at[i]!]!
    const waitingBefore = await entry.metric('meshd_entry_queue_length')
    sent.push(clients[at[i]!]!.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: tag }] }).then(() => { finished.push(tag) }))
    await waitFor(async () => (await entry.metric('meshd_entry_queue_length')) === waitingBefore + 1, { timeoutMs: 5000, intervalMs: 10, what: `request ${tag} to wait at ${entry.spec.name}` })
  }
  ac.abort()
  await holderIt.return?.()
  await Promise.all(sent)
  t.same(finished, ['1', '2', '3', '4', '5'], 'served in arrival order across both entry nodes')
})
