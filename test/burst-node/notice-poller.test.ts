/**
 * The notice poller (daemon/burst-node/notice-poller.ts) against the fake
 * IMDSv2 (test/helpers/imds.ts) over a real socket, through the AWS SDK's
 * metadata client: it reads nothing until a notice exists, reports each
 * notice once, survives the metadata service going away (logged once) and
 * picks up where it was when it comes back.
 */
import t from 'tap'
import { connect, createServer, type AddressInfo } from 'node:net'
import { NoticePoller } from '../../daemon/burst-node/notice-poller.ts'
import type { Notice } from '../../daemon/burst-node/notices.ts'
import type { Log } from '../../daemon/log.ts'
import { startImds } from '../helpers/imds.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

function recorder (): { log: Log, lines: Array<{ level: string, msg: string }> } {
  const lines: Array<{ level: string, msg: string }> = []
  const at = (level: string) => (a: unknown, b?: unknown) => { lines.push({ level, msg: typeof a === 'string' ? a : String(b) }) }
  const log = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), child: () => log } as unknown as Log
  return { log, lines }
}

t.test('notices reach the node once each, through the SDK over IMDSv2', async (t) => {
  const imds = await startImds({ instanceId: 'i-0abc', instanceType: 'c7a.large', region: 'us-east-1', zone: 'us-east-1b' })
  t.teardown(() => imds.close())
  const { log, lines } = recorder()
  const seen: Notice[] = []
  const counted: string[] = []
  const p = new NoticePoller({ intervalMs: 50, endpoint: imds.url }, { log, count: (k) => { counted.push(k) }, onNotice: (n) => { seen.push(n) } })
  t.teardown(() => p.stop())
  p.start()
  await waitFor(() => (imds.hits.get('/latest/meta-data/spot/instance-action') ?? 0) >= 3, { timeoutMs: 5000, what: 'three polls' })
  t.equal(p.notice, null, 'no notice: 404 is not an error')
  t.same(seen, [])
  t.equal(lines.filter((l) => l.level !== 'debug').length, 0, 'nothing logged while there is nothing')

  const rebalanceAt = Date.now()
  imds.announceRebalance(rebalanceAt)
  await waitFor(() => seen.length === 1, { timeoutMs: 5000, what: 'the rebalance notice' })
  t.same(seen[0], { kind: 'rebalance', at: Math.floor(rebalanceAt / 1000) * 1000 }, 'IMDS gives whole seconds')

  const at = Date.now() + 120_000
  imds.announceInterruption(at)
  await waitFor(() => seen.length === 2, { timeoutMs: 5000, what: 'the interruption notice' })
  t.same(seen[1], { kind: 'interruption', at: Math.floor(at / 1000) * 1000 })
  const polls = imds.hits.get('/latest/meta-data/spot/instance-action') ?? 0
  await waitFor(() => (imds.hits.get('/latest/meta-data/spot/instance-action') ?? 0) >= polls + 3, { timeoutMs: 5000, what: 'more polls' })
  t.equal(seen.length, 2, 'each notice once')
  t.same(counted, ['rebalance', 'interruption'])
  t.equal(imds.hits.get('/latest/api/token'), 1, `one IMDSv2 token for ${imds.hits.get('/latest/meta-data/spot/instance-action') ?? 0} polls`)
  t.equal(lines.filter((l) => /spot interruption notice/.test(l.msg)).length, 1, 'the interruption logged once')
  t.equal(lines.filter((l) => /rebalance recommendation/.test(l.msg)).length, 1, 'the rebalance logged once')
})

t.test('IMDS down: logged once, polled on, notices read once it answers', async (t) => {
  const imds = await startImds({ instanceId: 'i-1', instanceType: 't3.micro', region: 'eu-west-1', zone: 'eu-west-1a' })
  t.teardown(() => imds.close())
  // A switch in front of it: while `up` is false every connection is cut at once.
  let up = false
  let refused = 0
  const target = new URL(imds.url)
  const front = createServer((sock) => {
    if (!up) { refused += 1; sock.destroy(); return }
    const back = connect(Number(target.port), target.hostname)
    sock.pipe(back).pipe(sock)
    sock.on('error', () => { back.destroy() })
    back.on('error', () => { sock.destroy() })
  })
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { front.close(() => { resolve() }) }))
  const { port } = front.address() as AddressInfo

  const { log, lines } = recorder()
  const seen: Notice[] = []
  const p = new NoticePoller({ intervalMs: 30, endpoint: `http://127.0.0.1:${port}` }, { log, count: () => {}, onNotice: (n) => { seen.push(n) } })
  t.teardown(() => p.stop())
  p.start()
  await waitFor(() => refused >= 10, { timeoutMs: 5000, what: 'several failed polls' })
  t.equal(lines.filter((l) => /instance metadata unreachable/.test(l.msg)).length, 1, 'logged once, not per poll')
  t.same(seen, [])

  imds.announceInterruption(Date.now() + 60_000)
  up = true
  await waitFor(() => seen.length === 1, { timeoutMs: 5000, what: 'the notice once IMDS is back' })
  t.ok(lines.some((l) => /answers again/.test(l.msg)), 'its return is logged')
})
