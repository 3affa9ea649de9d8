/**
 * Two members with the same node_name (issue 11, item 10): the join works,
 * and the joining node warns, naming both peer ids, in its log and in what
 * `meshd join` prints; status marks both.
 */
import t from 'tap'
import { tempDir } from '../helpers/tmp.ts'
import { DaemonProcess, testCluster, writeSwarmKey } from '../helpers/daemon.ts'
import { meshd } from '../helpers/cli.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

t.test('meshd join to a mesh where this node_name is taken', async (t) => {
  const root = tempDir(t)
  const swarmKeyFile = writeSwarmKey(root)
  const cluster = testCluster(t, root, swarmKeyFile)
  const specs = [{ name: 'a', swarmKeyFile, config: { node_name: 'twin' } }, { name: 'b', swarmKeyFile, config: { node_name: 'twin' } }, { name: 'c', swarmKeyFile }]
  const [a, b, c] = await Promise.all(specs.map(async (s) => new DaemonProcess(s, await cluster.start(s))))
  // c joins a first: the clash is then with a member behind the peer b joins through, not with that peer itself.
  await c!.call('join', { addrs: [a!.joinAddr] }, 15_000)

  const r = await meshd(['join', c!.joinAddr, '--config', b!.configPath], { timeoutMs: 30_000 })
  t.equal(r.code, 0, 'the join works: a clash is a warning')
  t.comment(`meshd join took ${Math.round(r.ms)} ms (process start included): ${r.stderr.trim()}`)
  const ids = [a!.peerId, b!.peerId].sort()
  t.match(r.stderr, `meshd: warning: 2 members are named "twin": ${ids[0]} and ${ids[1]}; give each node its own node_name`, 'meshd join prints it, naming both peer ids')
  t.match(r.stdout, /joined through/)

  const warned = b!.logs.find((l) => l.level === 'warn' && /members are named "twin"/.test(l.msg))
  t.match(warned, { name: 'twin', members: ids }, 'the joining node logs it with both peer ids')

  const { value: doc } = await waitFor(async () => {
    const d = await c!.status()
    return d.members.filter((m) => m.same_name_as !== undefined).length === 2 ? d : undefined
  }, { timeoutMs: 5000, what: 'status on c to mark both' })
  t.same(doc.members.find((m) => m.id === a!.peerId)?.same_name_as, [b!.peerId], 'status --json marks each with the other')
  t.equal(doc.members.find((m) => m.id === c!.peerId)?.same_name_as, undefined, 'the member with its own name is not marked')
  const table = await meshd(['status', '--config', c!.configPath])
  t.comment('\n' + table.stdout)
  t.equal(table.stdout.match(/^twin !\*?\s/gm)?.length, 2, 'the table marks both rows')
  t.match(table.stdout, /^! 2 members are named "twin" \(.+, .+\): give each node its own node_name$/m)
})
