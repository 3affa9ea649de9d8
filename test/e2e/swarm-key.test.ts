/**
 * A wrong swarm key, end to end (issue 11, item 3): two real daemons with
 * different keys, joined with the real `meshd join`. The join must say that
 * the peer was reached but the private network handshake failed and name
 * this node's swarm.key, not time out; both daemons log the refusal with the
 * remote address and count it in meshd_peers_refused_total{reason="swarm_key"}.
 */
import t from 'tap'
import { tempDir } from '../helpers/tmp.ts'
import { DaemonProcess, writeSwarmKey } from '../helpers/daemon.ts'
import { meshd } from '../helpers/cli.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

t.test('meshd join to a daemon with another swarm key', async (t) => {
  const root = tempDir(t)
  const keyA = writeSwarmKey(root, 'a.key')
  const keyB = writeSwarmKey(root, 'b.key')
  const a = await DaemonProcess.start(t, root, { name: 'a', swarmKeyFile: keyA })
  const b = await DaemonProcess.start(t, root, { name: 'b', swarmKeyFile: keyB })
  t.equal(await a.metric('meshd_peers_refused_total', { reason: 'swarm_key' }), 0, 'the listener\'s counter is exported at 0 before any refusal')
  t.equal(await b.metric('meshd_peers_refused_total', { reason: 'swarm_key' }), 0)

  const join = await meshd(['join', a.joinAddr, '--config', b.configPath], { timeoutMs: 30_000 })
  t.comment(join.stderr.trim())
  t.equal(join.code, 1, 'the join fails')
  t.ok(join.ms < 4000, `and says so without waiting for a dial timeout (${Math.round(join.ms)} ms)`)
  t.match(join.stderr, /could not join through any of 1 peer\(s\)/, 'not "could not reach": the peer was reached')
  t.match(join.stderr, /private network handshake failed/)
  t.match(join.stderr, new RegExp(`different swarm key than ${b.spec.swarmKeyFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`), 'it names the swarm key file of the joining node')
  t.notMatch(join.stderr, /timeout/)

  // b's dialer keeps retrying the remembered join address: counts only go up.
  const { value: counts } = await waitFor(async () => {
    const ca = await a.metric('meshd_peers_refused_total', { reason: 'swarm_key' })
    const cb = await b.metric('meshd_peers_refused_total', { reason: 'swarm_key' })
    return ca >= 1 && cb >= 1 ? { ca, cb } : undefined
  }, { timeoutMs: 5000, what: 'both daemons to count the refusal' })
  t.pass(`refusals counted: listener ${counts.ca}, dialer ${counts.cb}`)
  t.equal(await a.metric('meshd_peers_refused_total', { reason: 'cluster' }), 0, 'not counted as another cluster')

  const warned = (d: DaemonProcess, re: RegExp) => d.logs.find((l) => l.level === 'warn' && re.test(l.msg))
  const inbound = warned(a, /refused a connection from \/ip4\/127\.0\.0\.1\/tcp\/\d+: .*different swarm key/)
  t.ok(inbound, 'the listener logs the refusal with the dialer\'s address')
  t.match(inbound, { direction: 'inbound', reason: 'swarm_key', swarm_key_file: keyA, remote: /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/ })
  const outbound = warned(b, /could not connect to \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+: .*different swarm key/)
  t.ok(outbound, 'the dialer logs it with the listener\'s address')
  t.match(outbound, { direction: 'outbound', reason: 'swarm_key', swarm_key_file: keyB })

  t.equal((await a.status()).members.length, 1, 'neither lists the other')
  t.equal((await b.status()).members.length, 1)
})
