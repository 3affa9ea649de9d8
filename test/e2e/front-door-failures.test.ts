/**
 * Members dying and draining under load, through the official openai client
 * pointed at one entry node:
 * - kill -9 of a member: no non-streamed request fails (none had sent a byte
 *   to its client, so each is retried elsewhere); of streamed requests, only
 *   those already streaming from it fail;
 * - SIGTERM of a member: no request fails (it drains).
 */
import t from 'tap'
import OpenAI from 'openai'
import { tempDir, type Teardown } from '../helpers/tmp.ts'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

function replica (tokensPerSecond: number) {
  return { models: ['llama3'], slots: 4, command: 'sim', readiness_probe: { path: '/health', initial_delay_seconds: 30, period_seconds: 1, timeout_seconds: 2 }, sim: { ttft_ms: 50, tokens_per_second: tokensPerSecond, max_tokens: 24 } }
}

interface Outcome { ok: boolean, stream: boolean, servedBy: string | null, error?: string }

/** Runs `workers` request loops (half streamed) until `stop()` says so, recording into `out`. */
function load (client: OpenAI, workers: number, stop: () => boolean, out: Outcome[]): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: workers }, async (_, w) => {
    const stream = w % 2 === 0
    while (!stop()) {
      let servedBy: string | null = null
      try {
        if (stream) {
          const { data, response } = await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: `w${w}` }], stream: true }).withResponse()
          servedBy = response.headers.get('x-meshd-served-by')
          let got = 0
          let errorEvent = false
          for await (const chunk of data) {
            if ((chunk as unknown as { error?: unknown }).error !== undefined) errorEvent = true
            got++
          }
          if (errorEvent || got === 0) throw new Error('stream ended with an error event')
        } else {
          const { response } = await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: `w${w}` }] }).withResponse()
          servedBy = response.headers.get('x-meshd-served-by')
        }
        out.push({ ok: true, stream, servedBy })
      } catch (err) {
        out.push({ ok: false, stream, servedBy, error: (err as Error).message })
      }
    }
  })).then(() => out)
}

async function mesh (t: Teardown, root: string): Promise<DaemonProcess[]> {
  const swarmKeyFile = writeSwarmKey(root)
  const nodes: DaemonProcess[] = []
  for (const name of ['entry', 'b', 'c']) {
    const d = await DaemonProcess.start(t, root, { name, swarmKeyFile, config: { replica: replica(40) } })
    if (nodes.length > 0) await d.call('join', { addrs: [nodes[0]!.joinAddr] })
    nodes.push(d)
  }
  for (const d of nodes) {
    await waitFor(async () => (await d.status()).members.filter((m) => m.state === 'alive' && m.replica?.ready === true).length === 3, { timeoutMs: 20_000, what: 'three ready replicas' })
  }
  return nodes
}

/** Three members, 12 clients on the first one's front door, until the third is serving some. */
async function underLoad (t: Teardown) {
  const [entry, , victim] = await mesh(t, tempDir(t))
  const client = new OpenAI({ baseURL: `${entry!.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 })
  const control = { stop: false }
  const outcomes: Outcome[] = []
  const running = load(client, 12, () => control.stop, outcomes)
  // Act on the victim only once it is actually serving.
  await waitFor(async () => ((await victim!.status()).members.find((m) => m.id === victim!.peerId)?.replica?.inflight ?? 0) > 0, { timeoutMs: 10_000, what: 'the victim to be busy' })
  return {
    victim: victim!,
    outcomes,
    /** Waits for `more` requests to end after this call, then stops the clients. */
    async finishAfter (more: number, what: string): Promise<void> {
      const at = outcomes.length
      await waitFor(() => outcomes.length >= at + more, { timeoutMs: 30_000, what: `${more} more requests after ${what}` })
      control.stop = true
      await running
    }
  }
}

t.test('kill -9 of a member under load', async (t) => {
  const { victim, outcomes, finishAfter } = await underLoad(t)
  victim.kill('SIGKILL')
  await finishAfter(36, 'the kill')
  const plainFailed = outcomes.filter((o) => !o.stream && !o.ok)
  const streamFailed = outcomes.filter((o) => o.stream && !o.ok)
  t.comment(`${outcomes.length} requests; failed: ${plainFailed.length} plain, ${streamFailed.length} streamed`)
  t.same(plainFailed, [], 'no non-streamed request failed')
  t.ok(streamFailed.every((o) => o.servedBy === victim.peerId), 'only streams already flowing from the killed member failed')
  t.ok(outcomes.filter((o) => o.ok).length > 12, 'the survivors kept serving')
})

t.test('SIGTERM of a member under load: nothing fails', async (t) => {
  const { victim, outcomes, finishAfter } = await underLoad(t)
  victim.kill('SIGTERM')
  const exit = await victim.exited()
  t.same(exit, { code: 0, signal: null }, 'the member drained and exited 0')
  await finishAfter(24, 'the stop')
  const failed = outcomes.filter((o) => !o.ok)
  t.comment(`${outcomes.length} requests, ${failed.length} failed`)
  t.same(failed, [], 'no request failed')
  t.ok(outcomes.some((o) => o.servedBy === victim.peerId), 'the drained member had been serving')
})
