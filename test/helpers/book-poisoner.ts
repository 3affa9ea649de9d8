/**
 * A rogue member for address-book poisoning (issue 12 item 6): a real libp2p
 * node holding the swarm key and speaking the cluster's sync protocol
 * (/meshd/<cluster>/sync/1.0.0, mesh/discovery/service.ts), which pushes to
 * each target daemon, again and again, an address book of made-up members
 * (real peer ids) whose addresses are loopback ports nobody listens on.
 * Never anything off loopback. Used by test/e2e/book-poisoning.test.ts and
 * bench/book-poisoning.ts.
 */
import { createServer } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshNode, type MeshNode } from '../../mesh/node.ts'
import { readSwarmKey } from '../../mesh/swarm-key.ts'
import { syncProtocol } from '../../mesh/topics.ts'
import { readJson, sendJson } from '../../mesh/streams.ts'
import { SYNC_MAX_BYTES, SYNC_VERSION, type SyncMessage } from '../../mesh/schemas/sync.ts'

export interface PoisonerInit {
  swarmKeyFile: string
  cluster: string
  /** Join addresses (/p2p/ included) of the daemons to poison. */
  targets: string[]
  /** Made-up members per book. @default 4096 (the schema's maximum) */
  members?: number
  /** Distinct dead loopback ports the addresses use. @default 64 */
  ports?: number
  /** Pause between two rounds of pushes. @default 500 */
  everyMs?: number
}

export interface Poisoner {
  node: MeshNode
  /** Books accepted by a target (the exchange completed). */
  readonly pushes: number
  /** The made-up members' peer ids. */
  readonly ids: readonly string[]
  stop: () => Promise<void>
}

/** Loopback ports free right now: bound to port 0 and closed again (nobody listens there afterwards). */
export async function deadLoopbackPorts (n: number): Promise<number[]> {
  const ports: number[] = []
  for (let i = 0; i < n; i++) {
    ports.push(await new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port
        s.close(() => { resolve(port) })
      })
    }))
  }
  return ports
}

export async function madeUpPeerIds (n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
}

export async function startPoisoner (init: PoisonerInit): Promise<Poisoner> {
  const count = init.members ?? 4096
  const ids = await madeUpPeerIds(count)
  const ports = await deadLoopbackPorts(init.ports ?? 64)
  const addrOf = (i: number): string => `/ip4/127.0.0.1/tcp/${ports[i % ports.length]!}`
  const protocol = syncProtocol(init.cluster)
  const node = await createMeshNode({
    privateKey: await generateKeyPair('Ed25519'),
    swarmKey: readSwarmKey(init.swarmKeyFile),
    swarmKeyFile: init.swarmKeyFile,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    maxGossipRpcBytes: 1 << 20
  })
  let round = 0
  /** Each round names the members in another order, so the first ones a daemon reads differ. */
  const book = (): SyncMessage => {
    const shift = (round * 64) % count
    const members = Array.from({ length: count }, (_, i) => { const j = (i + shift) % count; return { id: ids[j]!, addrs: [addrOf(j)] } })
    return { v: SYNC_VERSION, cluster: init.cluster, members }
  }
  // Answers a daemon's own exchange too (it starts one when it dials us).
  await node.handle(protocol, async (stream) => {
    try {
      await readJson(stream, SYNC_MAX_BYTES)
      await sendJson(stream, book())
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  await node.start()
  const size = JSON.stringify(book()).length
  if (size > SYNC_MAX_BYTES) throw new Error(`a book of ${count} members is ${size} bytes, over the sync limit ${SYNC_MAX_BYTES}`)

  let pushes = 0
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      await Promise.all(init.targets.map(async (target) => {
        try {
          const stream = await node.dialProtocol(multiaddr(target), protocol, { signal: AbortSignal.timeout(5000) })
          await sendJson(stream, book())
          await readJson(stream, SYNC_MAX_BYTES)
          pushes++
        } catch {}
      }))
      round++
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, init.everyMs ?? 500))
    }
  })()
  return {
    node,
    ids,
    get pushes () { return pushes },
    stop: async () => {
      stopped = true
      await loop
      await node.stop()
    }
  }
}
