/**
 * A spot interruption notice on a real burst-node meshd, under streaming load
 * through another node's front door (the official openai client):
 *
 * - the burst node (`instance.notices: ec2`) reads the fake IMDSv2
 *   (test/helpers/imds.ts) through AWS_EC2_METADATA_SERVICE_ENDPOINT, polling
 *   every 250 ms (`instance.notice_poll`; 5 s in production);
 * - an interruption is announced with the termination time 12 s ahead — EC2
 *   gives two minutes: time is compressed here, and the sim's streams last
 *   about 3 s instead of minutes;
 * - within one poll (plus a heartbeat's trip) the entry node sees the notice
 *   and `draining` in the member's heartbeat; requests that start after that
 *   go to the other member; the streams in flight on the burst node finish;
 *   not one request fails; the burst node stops by itself before the
 *   termination time (INTERRUPTION_MARGIN_MS, 5 s, ahead), exit 0.
 */
import t from 'tap'
import OpenAI from 'openai'
import { tempDir } from '../helpers/tmp.ts'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import { startImds } from '../helpers/imds.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { INTERRUPTION_MARGIN_MS } from '../../daemon/burst-node/notices.ts'

const POLL_MS = 250
const NOTICE_AHEAD_MS = 12_000

const replica = { models: ['llama3'], slots: 4, command: 'sim', readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1, timeout_seconds: 2 }, sim: { ttft_ms: 50, tokens_per_second: 8, max_tokens: 24 } }

interface Outcome { ok: boolean, startedAt: number, endedAt: number, servedBy: string | null, error?: string }

t.test('an interruption notice drains a burst node under streaming load: no request fails', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const imds = await startImds({ instanceId: 'i-0spot', instanceType: 'c7a.large', region: 'us-east-1', zone: 'us-east-1a' })
  t.teardown(() => imds.close())

  const entry = await DaemonProcess.start(t, root, { name: 'entry', swarmKeyFile, config: { replica } })
  const spot = await DaemonProcess.start(t, root, {
    name: 'spot',
    swarmKeyFile,
    env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url },
    config: {
      voter: false,
      provider: 'aws-spot',
      region: 'us-east-1',
      zone: 'us-east-1a',
      spot: true,
      replica,
      instance: { provider: 'aws-spot', id: 'i-0spot', key: 'd1-0', launched_at: Date.now(), notices: 'ec2', notice_poll: `${POLL_MS}ms` }
    }
  })
  await spot.call('join', { addrs: [entry.joinAddr] })
  await waitFor(async () => (await entry.status()).members.filter((m) => m.state === 'alive' && m.replica?.ready === true).length === 2, { timeoutMs: 20_000, what: 'two ready replicas' })
  await waitFor(() => (imds.hits.get('/latest/meta-data/spot/instance-action') ?? 0) >= 2, { timeoutMs: 5000, what: 'the burst node to poll its metadata' })

  const client = new OpenAI({ baseURL: `${entry.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 })
  let stop = false
  const outcomes: Outcome[] = []
  const running = Promise.all(Array.from({ length: 6 }, async (_, w) => {
    while (!stop) {
      const startedAt = Date.now()
      let servedBy: string | null = null
      try {
        const { data, response } = await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: `w${w}` }], stream: true }).withResponse()
        servedBy = response.headers.get('x-meshd-served-by')
        let chunks = 0
        for await (const chunk of data) {
          if ((chunk as unknown as { error?: unknown }).error !== undefined) throw new Error('the stream ended with an error event')
          chunks++
        }
        if (chunks === 0) throw new Error('an empty stream')
        outcomes.push({ ok: true, startedAt, endedAt: Date.now(), servedBy })
      } catch (err) {
        outcomes.push({ ok: false, startedAt, endedAt: Date.now(), servedBy, error: (err as Error).message })
      }
    }
  }))
  t.teardown(async () => { stop = true; await running })

  const spotMember = async () => (await entry.status()).members.find((m) => m.id === spot.peerId)
  await waitFor(async () => ((await spotMember())?.replica?.inflight ?? 0) >= 2, { timeoutMs: 15_000, what: 'streams in flight on the burst node' })

  const announced = Date.now()
  imds.announceInterruption(announced + NOTICE_AHEAD_MS)
  const at = Math.floor((announced + NOTICE_AHEAD_MS) / 1000) * 1000 // IMDS speaks whole seconds
  const seen = await waitFor(async () => {
    const m = await spotMember()
    return m?.notice?.kind === 'interruption' && m.draining ? m : null
  }, { timeoutMs: 5000, intervalMs: 50, what: 'the notice and draining in the burst node\'s heartbeat' })
  const drainSeenAt = Date.now()
  t.comment(`notice in the heartbeat as seen from the entry node ${seen.ms.toFixed(0)} ms after it was announced (poll ${POLL_MS} ms)`)
  t.ok(seen.ms < POLL_MS + 1000, 'within one poll (and a heartbeat\'s trip)')
  t.equal(seen.value.notice?.at, at, 'the heartbeat names the termination time')
  const inflightAtNotice = seen.value.replica?.inflight ?? 0
  t.ok(await spot.metric('meshd_spot_notices_total', { kind: 'interruption' }) === 1, 'counted once')

  const exit = await spot.exited()
  const exitedAt = Date.now()
  t.same(exit, { code: 0, signal: null }, 'the burst node stopped by itself, exit 0')
  // When it stopped, by its own log; and the process went within a second
  // or so of that (the AWS SDK's metadata client leaves idle keep-alive
  // sockets that must not hold a stopped daemon).
  const stoppedAt = Date.parse(String(spot.logs.find((l) => l.msg === 'meshd stopped')?.time))
  t.ok(exitedAt - stoppedAt < 2500, `the process exited ${exitedAt - stoppedAt} ms after "meshd stopped"`)
  t.ok(stoppedAt <= at, `it had stopped before the termination time (${at - stoppedAt} ms ahead)`)
  t.ok(stoppedAt >= at - INTERRUPTION_MARGIN_MS - 1000, 'and not long before its cut-off')

  // A few more requests after it went, then stop the clients.
  const count = outcomes.length
  await waitFor(() => outcomes.length >= count + 6, { timeoutMs: 20_000, what: 'requests after the burst node went' })
  stop = true
  await running

  const failed = outcomes.filter((o) => !o.ok)
  const onSpot = outcomes.filter((o) => o.servedBy === spot.peerId)
  const drainedOnSpot = onSpot.filter((o) => o.startedAt < announced && o.endedAt > drainSeenAt)
  const lateOnSpot = onSpot.filter((o) => o.startedAt > drainSeenAt + 200)
  t.comment(`${outcomes.length} streams; ${onSpot.length} served by the burst node, ${drainedOnSpot.length} of them finished after its drain began (${inflightAtNotice} in flight at the notice); ${failed.length} failed`)
  t.same(failed, [], 'no request failed')
  t.ok(drainedOnSpot.length >= 1, 'streams in flight on the burst node at the notice ran to their end')
  t.same(lateOnSpot, [], 'no request that started after the drain went to the burst node')
  t.ok(outcomes.some((o) => o.startedAt > drainSeenAt && o.ok), 'new requests were served elsewhere')
})
