/**
 * The libp2p node: TCP, noise, yamux, identify, ping, a private network from
 * the swarm key (pnet, guarded so that a key mismatch is named: pnet-guard.ts),
 * and gossipsub. Everything meshd says between nodes
 * goes over this one node: gossip topics and its own stream protocols.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import type { PrivateKey } from '@libp2p/interface'
import { guardedPreSharedKey, type PnetRefusal } from './pnet-guard.ts'
import { MAX_ADDRS_PER_PEER } from './discovery/constants.ts'

export interface MeshNodeInit {
  privateKey: PrivateKey
  swarmKey: Uint8Array
  /** The file the swarm key came from, named when a peer's key differs. */
  swarmKeyFile: string
  /** A connection refused because the peer's swarm key differs (pnet-guard.ts). */
  onRefused?: (r: PnetRefusal) => void
  listen: string[]
  announce: string[]
  /** Largest gossip RPC accepted from a peer; messages are capped lower per topic. */
  maxGossipRpcBytes: number
}

export type MeshServices = { identify: Identify, ping: Ping, pubsub: GossipSub }
export type MeshNode = Libp2p<MeshServices>

export async function createMeshNode (init: MeshNodeInit): Promise<MeshNode> {
  return createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen, announce: init.announce },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: guardedPreSharedKey({ psk: init.swarmKey, keyFile: init.swarmKeyFile, ...(init.onRefused !== undefined ? { onRefused: init.onRefused } : {}) }),
    connectionManager: {
      // Members of one cluster often share an address (several nodes on one
      // host, or behind one NAT): the default per-host inbound rate limit
      // would refuse them while the mesh forms.
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 256,
      dialTimeout: 5000,
      // A dial tries a peer's addresses one after another: as many as
      // discovery keeps per peer (mesh/discovery/constants.ts), not 25.
      maxPeerAddrsToDial: MAX_ADDRS_PER_PEER
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        // A lone first node still publishes its heartbeat (nobody hears it).
        allowPublishToZeroTopicPeers: true,
        // Our own heartbeats go to every topic peer directly, not only to the
        // gossip mesh: every member hears every member first-hand, which is
        // what the failure detector's timeouts assume.
        floodPublish: true,
        emitSelf: false,
        maxInboundDataLength: init.maxGossipRpcBytes,
        // Messages are signed by their origin (the default, StrictSign): a
        // heartbeat's `id` is checked against the signed `from`, so no member
        // can speak for another.
        globalSignaturePolicy: 'StrictSign',
        // Gossipsub penalises more than 10 peers sharing one IP address (a
        // Sybil defence for open networks). Ours is closed (swarm key and
        // cluster gate), and many members on one address are normal: several
        // daemons on one host, pods behind one SNAT. Left on, at 15 members
        // on a host every peer's score fell to the graylist within seconds
        // and heartbeats stopped flowing (found by bench/mesh).
        scoreParams: { IPColocationFactorWeight: 0 },
        // Every member receives each heartbeat first-hand from its origin
        // (flood publish); the gossip mesh only covers members that are not
        // directly connected. A smaller mesh degree than the default 6
        // (Dhi 12) cuts the duplicate copies each node receives, the bulk of
        // the gossip bytes (bench/mesh), and IDONTWANT from 128 bytes on
        // stops most of the rest.
        D: 3,
        Dlo: 2,
        Dhi: 6,
        Dout: 1,
        Dscore: 2,
        Dlazy: 3,
        idontwantMinDataSize: 128
      })
    }
  })
}
