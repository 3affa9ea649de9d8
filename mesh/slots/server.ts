/**
 * The serving member's side of /meshd/slots/1: takes wants and declines
 * from entry nodes and carries offers back to them. Which entry gets a slot
 * is decided elsewhere (daemon/proxy/slot-broker.ts); this only moves
 * validated messages and tells when an entry's stream is gone, so the
 * broker can forget its wants and free what it was offered.
 */
import type { Stream } from '@libp2p/interface'
import type { MeshNode } from '../node.ts'
import type { LoadReport } from '../infer/schemas.ts'
import { encodeJsonFrame } from '../infer/frames.ts'
import { readJsonFrames } from './frames.ts'
import { SLOTS_PROTOCOL, SLOTS_VERSION, SLOT_FRAME, wantSchema, declineSchema, type WantMessage } from './schemas.ts'
import { MAX_SLOT_STREAMS } from './client.ts'
import type { Startable } from '../startable.ts'

const STREAM_IDLE_MS = 24 * 3600_000

export interface SlotsServerComponents {
  node: MeshNode
  want: (entry: string, w: WantMessage) => void
  decline: (entry: string, id: string) => void
  /** The entry's stream closed: its wants and offers are void. */
  gone: (entry: string) => void
  log: { debug: (o: object, msg: string) => void }
}

export interface OutgoingOffer { id: string, model: string, seq: number, ttlMs: number, load?: LoadReport }

export class SlotsServer implements Startable {
  private readonly c: SlotsServerComponents
  /** The current stream of each entry node (a reconnect replaces it). */
  private readonly streams = new Map<string, Stream>()

  constructor (components: SlotsServerComponents) {
    this.c = components
  }

  async start (): Promise<void> {
    await this.c.node.handle(SLOTS_PROTOCOL, (stream, connection) => { this.accept(stream, connection.remotePeer.toString()) }, { maxInboundStreams: MAX_SLOT_STREAMS, maxOutboundStreams: MAX_SLOT_STREAMS })
  }

  async stop (): Promise<void> {
    await this.c.node.unhandle(SLOTS_PROTOCOL)
    for (const s of this.streams.values()) s.abort(new Error('member stopping'))
    this.streams.clear()
  }

  /** Sends an offer; false when the entry has no open stream (the caller withdraws the offer). */
  offer (entry: string, o: OutgoingOffer): boolean {
    const s = this.streams.get(entry)
    if (s === undefined || s.status !== 'open' || s.writeStatus !== 'writable') return false
    s.send(encodeJsonFrame(SLOT_FRAME.OFFER, { v: SLOTS_VERSION, id: o.id, model: o.model, seq: o.seq, ttl_ms: o.ttlMs, ...(o.load !== undefined ? { load: o.load } : {}) }))
    return true
  }

  private accept (stream: Stream, entry: string): void {
    const previous = this.streams.get(entry)
    if (previous !== undefined) {
      // The entry reconnected: its old stream's state is void, the new one starts afresh.
      this.streams.delete(entry)
      previous.abort(new Error('replaced by a new stream'))
      this.c.gone(entry)
    }
    this.streams.set(entry, stream)
    stream.inactivityTimeout = STREAM_IDLE_MS
    readJsonFrames(stream, (type, doc) => {
      if (type === SLOT_FRAME.WANT) {
        const w = wantSchema.safeParse(doc)
        if (!w.success) { this.reject(stream, entry, 'malformed want'); return false }
        this.c.want(entry, w.data)
      } else if (type === SLOT_FRAME.DECLINE) {
        const d = declineSchema.safeParse(doc)
        if (!d.success) { this.reject(stream, entry, 'malformed decline'); return false }
        this.c.decline(entry, d.data.id)
      } else {
        this.reject(stream, entry, `unexpected slots frame ${type}`)
        return false
      }
      return true
    })
    stream.addEventListener('close', () => {
      if (this.streams.get(entry) !== stream) return
      this.streams.delete(entry)
      this.c.gone(entry)
    })
  }

  private reject (stream: Stream, entry: string, why: string): void {
    this.c.log.debug({ entry, why }, 'slots stream reset')
    stream.abort(new Error(why))
  }
}
