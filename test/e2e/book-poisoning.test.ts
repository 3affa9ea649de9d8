/**
 * Address-book poisoning (issue 12 item 6), with real daemons: a key holder
 * pushes books of 4,096 made-up members, on loopback ports nobody listens on,
 * to a daemon over and over through the cluster's sync protocol. The daemon
 * must dial no more than its budget (DIAL_BURST + DIAL_RATE_PER_S per second;
 * it was ~16 dials a second, forever), remember no more than its caps, and
 * keep its real mesh. And `meshd join --forget` removes a join address for
 * good, also across a restart.
 */
import t from 'tap'
import { startChain, writeSwarmKey, type DaemonProcess } from '../helpers/daemon.ts'
import { tempDir } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { deadLoopbackPorts, madeUpPeerIds, startPoisoner } from '../helpers/book-poisoner.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'
import { DIAL_BURST, DIAL_RATE_PER_S, MAX_HINTS, MAX_PEERS } from '../../mesh/discovery/constants.ts'

async function targets (n: DaemonProcess): Promise<Record<string, number>> {
  const text = await n.metricsText()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^meshd_discovery_targets\{source="(\w+)"\} (\S+)$/gm)) out[m[1]!] = Number(m[2])
  return out
}

t.test('a poisoned address book leaves dials within the budget and the remembered set capped', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const nodes = await startChain(t, root, 2, { swarmKeyFile })
  for (const n of nodes) {
    await waitFor(async () => (await n.status()).members.filter((m) => m.state === 'alive').length === 2, { timeoutMs: 15_000, what: `${n.spec.name} to see both alive` })
  }
  const victim = nodes[1]!
  const poisoner = await startPoisoner({ swarmKeyFile, cluster: 'test', targets: [victim.joinAddr], members: 4096, everyMs: 250 })
  t.teardown(async () => { await poisoner.stop() })

  await waitFor(async () => (await targets(victim)).hint! > 0, { timeoutMs: 15_000, what: 'the victim to take hints from the poisoned books' })
  const start = Date.now()
  const dials0 = await victim.metric('meshd_dials_total')
  const addrs0 = await victim.metric('meshd_dial_addresses_total')
  const pushes0 = poisoner.pushes
  let most = { hint: 0, peers: 0 }
  // The window: until the victim has taken 60 more books (~15 s), sampling what it remembers.
  await waitFor(async () => {
    const c = await targets(victim)
    most = { hint: Math.max(most.hint, c.hint ?? 0), peers: Math.max(most.peers, (c.hint ?? 0) + (c.member ?? 0) + (c.remembered ?? 0)) }
    return poisoner.pushes - pushes0 >= 60
  }, { timeoutMs: 60_000, intervalMs: 200, what: 'the poisoner to push 60 books' })
  const seconds = (Date.now() - start) / 1000
  const dials = await victim.metric('meshd_dials_total') - dials0
  const addrs = await victim.metric('meshd_dial_addresses_total') - addrs0
  const bound = DIAL_BURST + DIAL_RATE_PER_S * (seconds + 1)
  t.comment(`${poisoner.pushes - pushes0} books of 4,096 in ${seconds.toFixed(1)} s: ${dials} dials, ${addrs} addresses (bound ${bound.toFixed(0)}); at most ${most.hint} hints, ${most.peers} peers remembered`)
  t.ok(dials > 0, 'the poison was dialled at all (the test measures something)')
  t.ok(addrs <= bound, `addresses dialled within the budget: ${addrs} <= ${bound.toFixed(0)}`)
  t.ok(dials <= bound, `dials within the budget: ${dials} <= ${bound.toFixed(0)}`)
  t.ok(most.hint <= MAX_HINTS, `hints capped: ${most.hint} <= ${MAX_HINTS}`)
  t.ok(most.peers <= MAX_PEERS, `peers remembered capped: ${most.peers} <= ${MAX_PEERS}`)

  const s = await victim.status()
  t.equal(s.members.filter((m) => m.state === 'alive').length, 2, 'the real mesh is intact')
  t.notOk(s.members.some((m) => poisoner.ids.includes(m.id)), 'no made-up member is listed')
  t.ok(victim.running && nodes[0]!.running, 'both daemons still run')
})

t.test('meshd join --forget removes a join address, also after a restart; --list shows them', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const [node] = await startChain(t, root, 1, { swarmKeyFile })
  const n = node!
  const [p1, p2] = await deadLoopbackPorts(2)
  const [id1, id2] = await madeUpPeerIds(2)
  const gone = `/ip4/127.0.0.1/tcp/${p1!}/p2p/${id1!}`
  const kept = `/ip4/127.0.0.1/tcp/${p2!}/p2p/${id2!}`
  const cfg = ['--config', n.configPath]
  const listed = async (): Promise<string[]> => {
    const r = await meshd(['join', '--list', '--json', ...cfg])
    t.equal(r.code, 0, `join --list exits 0 ${r.stderr}`)
    return (JSON.parse(r.stdout) as { addrs: Array<{ addr: string }> }).addrs.map((a) => a.addr)
  }

  const joined = await meshd(['join', gone, kept, ...cfg])
  t.equal(joined.code, 1, 'joining through addresses nobody answers fails')
  t.same((await listed()).sort(), [gone, kept].sort(), 'both are remembered all the same (and dialled with back-off)')
  const table = await meshd(['join', '--list', ...cfg])
  t.match(table.stdout, /ADDRESS\s+SOURCE\s+STATE\s+FAILURES\s+NEXT DIAL/, 'a table by default')

  const forgot = await meshd(['join', '--forget', gone, ...cfg])
  t.equal(forgot.code, 0, `--forget exits 0 ${forgot.stderr}`)
  t.match(forgot.stdout, /forgot/)
  t.same(await listed(), [kept], 'the forgotten address is gone')
  const again = await meshd(['join', '--forget', gone, ...cfg])
  t.equal(again.code, 1, 'forgetting it twice fails')
  t.match(again.stderr, /not a remembered join address/)
  const both = await meshd(['join', '--list', '--forget', gone, ...cfg])
  t.equal(both.code, 2, '--list with --forget is bad usage')

  n.kill('SIGTERM')
  await n.exited()
  await n.restart()
  t.same(await listed(), [kept], 'after a restart: still forgotten, the other still remembered')
})
