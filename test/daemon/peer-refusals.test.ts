/** daemon/peer-refusals.ts: every refusal counted, one warning per remote host per minute (fake clock). */
import t from 'tap'
import { hostOf, refusalReporter, REFUSAL_WARN_EVERY_MS } from '../../daemon/peer-refusals.ts'
import type { PnetRefusal } from '../../mesh/pnet-guard.ts'

function harness () {
  let now = 1_000_000
  const counted: string[] = []
  const warns: Array<{ o: Record<string, unknown>, msg: string }> = []
  const debugs: string[] = []
  const report = refusalReporter({
    metrics: { peersRefused: { inc: ({ reason }) => { counted.push(reason) } } },
    log: { warn: (o, msg) => { warns.push({ o: o as Record<string, unknown>, msg }) }, debug: (_o, msg) => { debugs.push(msg) } },
    keyFile: '/etc/meshd/swarm.key',
    now: () => now
  })
  return { report, counted, warns, debugs, advance: (ms: number) => { now += ms } }
}

const from = (addr: string, direction: 'inbound' | 'outbound' = 'inbound'): PnetRefusal => ({ direction, remoteAddr: addr, reason: 'swarm_key', detail: 'noise' })

t.test('hostOf', async (t) => {
  t.equal(hostOf('/ip4/10.0.0.7/tcp/51234'), '10.0.0.7')
  t.equal(hostOf('/ip6/::1/tcp/4001/p2p/12D3KooW'), '::1')
  t.equal(hostOf('/dns4/a.example/tcp/4001'), 'a.example')
  t.equal(hostOf('garbage'), 'garbage')
})

t.test('counts every refusal, warns once per host per minute, names the key file and the address', async (t) => {
  const h = harness()
  h.report(from('/ip4/10.0.0.7/tcp/50001'))
  h.report(from('/ip4/10.0.0.7/tcp/50002'))
  h.report(from('/ip4/10.0.0.8/tcp/50003'))
  t.same(h.counted, ['swarm_key', 'swarm_key', 'swarm_key'])
  t.equal(h.warns.length, 2, 'one warning per host')
  t.equal(h.debugs.length, 1, 'the repeat goes to debug')
  t.match(h.warns[0]!.msg, /^refused a connection from \/ip4\/10\.0\.0\.7\/tcp\/50001: the private network handshake failed, the peer most likely uses a different swarm key than \/etc\/meshd\/swarm\.key$/)
  t.match(h.warns[0]!.o, { remote: '/ip4/10.0.0.7/tcp/50001', direction: 'inbound', reason: 'swarm_key', swarm_key_file: '/etc/meshd/swarm.key' })
  h.advance(REFUSAL_WARN_EVERY_MS - 1)
  h.report(from('/ip4/10.0.0.7/tcp/50004'))
  t.equal(h.warns.length, 2, 'still within the minute')
  h.advance(1)
  h.report(from('/ip4/10.0.0.7/tcp/4001/p2p/12D3KooWx', 'outbound'))
  t.equal(h.warns.length, 3, 'warned again after a minute')
  t.match(h.warns[2]!.msg, /^could not connect to \/ip4\/10\.0\.0\.7\/tcp\/4001\/p2p\/12D3KooWx: /)
  t.equal(h.counted.length, 5)
})
