/**
 * Election messages between voters over the mesh: one long-lived stream per
 * peer and direction (`/meshd/<cluster>/raft/1`), length-framed JSON
 * envelopes. Best effort, as Raft expects of its network: a message that
 * cannot go now (no stream yet, peer unreachable) is dropped and Raft sends
 * again on its next round. The sender's identity is the authenticated libp2p
 * peer, checked against the message's `from`.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import { z } from 'zod'
import type { MeshNode } from '../node.ts'
import { FrameDecoder, encodeJsonFrame, decodeJson } from '../infer/frames.ts'
import { parseMessage, toWire, type Message } from './raft/index.ts'

export const RAFT_ENVELOPE_VERSION = 1
const FRAME_TYPE = 1
const MAX_QUEUE = 256
const REDIAL_AFTER_MS = 250

export function raftProtocol (cluster: string): string {
  return `/meshd/${cluster}/raft/1`
}

/** What travels: the Raft message and the consensus group its sender is in. */
export interface Envelope { group: string | null, msg: Message }

const envelopeSchema = z.object({
  v: z.literal(RAFT_ENVELOPE_VERSION),
  group: z.string().max(256).nullable(),
  msg: z.unknown()
})

interface Outbound { stream: Stream | null, opening: boolean, queue: Uint8Array[], failedAt: number }

export interface TransportComponents {
  node: MeshNode
  log: { debug: (o: object, msg: string) => void, warn: (o: object, msg: string) => void }
}

export class RaftTransport {
  private readonly protocol: string
  private readonly c: TransportComponents
  private readonly onMessage: (env: Envelope) => void
  private readonly out = new Map<string, Outbound>()
  private readonly inbound = new Set<Stream>()
  private stopped = false
  rejected = 0

  constructor (cluster: string, components: TransportComponents, onMessage: (env: Envelope) => void) {
    this.protocol = raftProtocol(cluster)
    this.c = components
    this.onMessage = onMessage
  }

  async start (): Promise<void> {
    await this.c.node.handle(this.protocol, (stream, conn) => { this.accept(stream, conn.remotePeer.toString()) }, { maxInboundStreams: 8, maxOutboundStreams: 8 })
  }

  async stop (): Promise<void> {
    this.stopped = true
    await this.c.node.unhandle(this.protocol).catch(() => {})
    for (const o of this.out.values()) o.stream?.abort(new Error('stopping'))
    for (const s of this.inbound) s.abort(new Error('stopping'))
    this.out.clear()
  }

  send (to: string, env: Envelope): void {
    if (this.stopped) return
    const frame = encodeJsonFrame(FRAME_TYPE, { v: RAFT_ENVELOPE_VERSION, group: env.group, msg: toWire(env.msg) })
    let o = this.out.get(to)
    if (o === undefined) {
      o = { stream: null, opening: false, queue: [], failedAt: 0 }
      this.out.set(to, o)
    }
    const s = o.stream
    if (s !== null && s.status === 'open' && s.writeStatus === 'writable') {
      // Small messages; when the transport cannot keep up, drop rather than queue without bound.
      if (s.writableNeedsDrain && s.writeBufferLength > 1 << 20) return
      try { s.send(frame) } catch { o.stream = null }
      return
    }
    if (o.queue.length < MAX_QUEUE) o.queue.push(frame)
    this.open(to, o)
  }

  private open (to: string, o: Outbound): void {
    if (o.opening || Date.now() - o.failedAt < REDIAL_AFTER_MS) return
    o.opening = true
    let peer
    try {
      peer = peerIdFromString(to)
    } catch {
      o.opening = false
      o.queue = []
      return
    }
    this.c.node.dialProtocol(peer, this.protocol, { signal: AbortSignal.timeout(2000), negotiateFully: false }).then((stream) => {
      o.opening = false
      if (this.stopped) { stream.abort(new Error('stopping')); return }
      // Nothing is read on our outbound stream; a long-lived stream must not time out idle.
      stream.inactivityTimeout = 0
      o.stream = stream
      stream.addEventListener('close', () => { if (o.stream === stream) o.stream = null })
      const queued = o.queue
      o.queue = []
      for (const f of queued) stream.send(f)
    }, (err: Error) => {
      o.opening = false
      o.failedAt = Date.now()
      o.queue = []
      this.c.log.debug({ peer: to, err: err.message }, 'raft stream could not be opened')
    })
  }

  private accept (stream: Stream, remote: string): void {
    this.inbound.add(stream)
    stream.inactivityTimeout = 0
    const decoder = new FrameDecoder()
    stream.addEventListener('close', () => { this.inbound.delete(stream) })
    stream.addEventListener('message', (evt) => {
      let frames
      try {
        frames = decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
      } catch (err) {
        this.rejected++
        stream.abort(err as Error)
        return
      }
      for (const f of frames) {
        let raw: unknown
        try { raw = decodeJson(f.payload) } catch { this.rejected++; continue }
        const env = envelopeSchema.safeParse(raw)
        if (!env.success) { this.rejected++; continue }
        let msg: Message
        try {
          msg = parseMessage(env.data.msg)
        } catch (err) {
          this.rejected++
          this.c.log.debug({ peer: remote, err: (err as Error).message }, 'malformed raft message')
          continue
        }
        // Only the peer itself may speak for itself.
        if (msg.from !== remote) { this.rejected++; continue }
        this.onMessage({ group: env.data.group, msg })
      }
    })
  }
}
