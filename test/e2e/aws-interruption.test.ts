/**
 * A spot interruption under streaming load, on (fake) EC2: two spot burst
 * nodes serve beside three voters; streaming chat completions (the official
 * openai client) go through every voter's front door all along. One node
 * gets an interruption notice on its instance metadata with its termination
 * time 20 s ahead — EC2 gives two minutes; the time is compressed here, and
 * nothing in the path depends on the length but the drain deadline, which is
 * derived from the notice. The fake EC2 terminates the instance at that
 * time (SIGTERM, then SIGKILL), as EC2 does.
 *
 * Asserted: the leader launches a replacement that is ready before the
 * interrupted node goes, in another zone; no request fails.
 */
import t from 'tap'
import OpenAI from 'openai'
import { tempDir } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { netnsMachinesAvailable } from '../helpers/fake-ec2/index.ts'
import { buildBundle, liveInstances, startAwsMesh, type Bundle } from '../helpers/aws-mesh.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

const skip = netnsMachinesAvailable()
const NOTICE_MS = 20_000

let bundle: Bundle | null = null
t.before(async () => {
  if (skip !== false) return
  bundle = await buildBundle(tempDir(t, 'meshd-aws-int-bundle-'))
})

t.test('an interruption notice under streaming load: a replacement is ready before the node goes; no request fails', { skip }, async (t) => {
  const { fake, nodes } = await startAwsMesh(t, tempDir(t), {
    bundle: bundle!,
    // Both zones cost the same: the two nodes spread over them, and the replacement has a choice.
    spot: { 'us-east-1a': 0.03, 'us-east-1b': 0.03 },
    config: { replica: { models: ['llama3'], slots: 1, command: 'sim', sim: { ttft_ms: 20, tokens_per_second: 100, max_tokens: 16 } } }
  })
  const r = await meshd(['burst', '--count', '2', '--provider', 'aws-spot', '--wait', '--json', '--config', nodes[0]!.configPath], { timeoutMs: 240_000 })
  t.equal(r.code, 0, r.code === 0 ? 'burst answered' : `${r.stdout}\n${r.stderr}`)
  const ready = async (): Promise<Array<{ id: string, instance?: { id: string }, zone?: string }>> => {
    const s = await nodes[0]!.status()
    return s.members.filter((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true && !m.draining)
  }
  await waitFor(async () => (await ready()).length === 2, { timeoutMs: 120_000, what: 'two burst members ready' })

  // Streaming load through every voter's front door until told to stop.
  let stop = false
  let ok = 0
  const failures: string[] = []
  const servedBy = new Map<string, number>()
  const clients = nodes.map((n) => new OpenAI({ baseURL: `${n.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60_000 }))
  const load = Promise.all(Array.from({ length: 9 }, async (_, i) => {
    const client = clients[i % clients.length]!
    while (!stop) {
      try {
        const { data: stream, response } = await client.chat.completions.create({ model: 'llama3', stream: true, max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }).withResponse()
        let text = ''
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
        if (text.length === 0) throw new Error('empty completion')
        const by = response.headers.get('x-meshd-served-by') ?? '?'
        servedBy.set(by, (servedBy.get(by) ?? 0) + 1)
        ok++
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  }))
  t.teardown(() => { stop = true })

  const before = liveInstances(fake)
  t.equal(before.length, 2)
  const victim = before[0]!
  const members = await ready()
  const victimMember = members.find((m) => m.instance?.id === victim.id)!
  await waitFor(() => (servedBy.get(victimMember.id) ?? 0) > 0, { timeoutMs: 30_000, what: 'the victim to take traffic' })

  const noticeAt = Date.now()
  const at = noticeAt + NOTICE_MS
  fake.interrupt(victim.id, at)
  const { value: replacement } = await waitFor(async () => {
    const fresh = (await ready()).find((m) => !members.some((x) => x.id === m.id))
    return fresh ?? null
  }, { timeoutMs: NOTICE_MS, intervalMs: 100, what: 'a replacement member ready before the termination time' })
  const readyMs = Date.now() - noticeAt
  t.ok(Date.now() < at, `replacement ready ${readyMs} ms after the notice, before the termination time (${NOTICE_MS} ms)`)
  const replaced = fake.instance(replacement.instance!.id)
  t.equal(replaced.market, 'spot', 'the replacement is spot')
  t.not(replaced.zone, victim.zone, `in another zone than the interrupted one (${victim.zone} → ${replaced.zone})`)

  await waitFor(() => fake.instance(victim.id).state === 'terminated', { timeoutMs: NOTICE_MS + 30_000, what: 'the interrupted instance terminated by EC2' })
  // A little load after the node is gone: nothing points at it any more.
  const okAtEnd = ok
  await waitFor(() => ok >= okAtEnd + 20, { timeoutMs: 30_000, what: 'requests served after the node went' })
  stop = true
  await load
  t.same(failures, [], `no request failed (${ok} served: ${[...servedBy.entries()].map(([k, v]) => `${k.slice(-6)} ${v}`).join(', ')})`)
  t.equal(liveInstances(fake).length, 2, 'two instances live again: the survivor and the replacement')
})
