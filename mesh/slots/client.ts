/**
 * The entry node's side of /meshd/slots/1: one stream per member, opened
 * when a request first waits for one of that member's models and kept open
 * (a want costs one small frame on it; an offer arrives on it).
 *
 * The stream is what ties an entry's wants to its life: when it closes, the
 * member forgets them and frees what it offered. So a stream that closes
 * while this node still wants something is reopened and every current want
 * is sent again.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import type { MeshNode } from '../node.ts'
import { encodeJsonFrame } from '../infer/frames.ts'
import { readJsonFrames } from './frames.ts'
import { SLOTS_PROTOCOL, SLOTS_VERSION, SLOT_FRAME, offerSchema, type OfferMessage } from './schemas.ts'

/** Streams held open for wants; above it a member gets none (its requests are placed by estimate). */
export const MAX_SLOT_STREAMS = 256
const DIAL_TIMEOUT_MS = 5000
/** A long-lived control stream: only a close ends it. */
const STREAM_IDLE_MS = 24 * 3600_000
const REDIAL_MS = 500

export interface WantUpdate {
  model: string
  waiting: number
  headsMs: number[]
}

interface Link {
  stream: Stream | null
  opening: boolean
  /** The highest offer seq handled on the current stream. */
  seen: number
  /** The last want sent per model (sent again on a new stream). */
  wants: Map<string, WantUpdate>
  retry: NodeJS.Timeout | undefined
}

export interface SlotsClientComponents {
  node: MeshNode
  /** An offer from `member`; handled synchronously (take it or decline it). */
  onOffer: (member: string, offer: OfferMessage) => void
  log: { debug: (o: object, msg: string) => void }
}

export class SlotsClient {
  private readonly c: SlotsClientComponents
  private readonly links = new Map<string, Link>()
  private closed = false

  constructor (components: SlotsClientComponents) {
    this.c = components
  }

  /** Sends this node's demand for a model to a member (waiting 0 withdraws it). */
  want (member: string, w: WantUpdate): void {
    if (this.closed) return
    let link = this.links.get(member)
    if (link === undefined) {
      if (w.waiting === 0) return
      if (this.links.size >= MAX_SLOT_STREAMS) return
      link = { stream: null, opening: false, seen: 0, wants: new Map(), retry: undefined }
      this.links.set(member, link)
    }
    if (w.waiting === 0) link.wants.delete(w.model)
    else link.wants.set(w.model, w)
    this.write(member, link, this.wantFrame(link, w))
  }

  /** The offer found no waiter here: the member gives the slot to the next. */
  decline (member: string, id: string): void {
    const link = this.links.get(member)
    if (link === undefined) return
    this.write(member, link, encodeJsonFrame(SLOT_FRAME.DECLINE, { v: SLOTS_VERSION, id }))
  }

  /** The last offer seq handled from `member` on the current stream. */
  seen (member: string): number {
    return this.links.get(member)?.seen ?? 0
  }

  /** The member left the mesh: drop its stream. */
  forget (member: string): void {
    const link = this.links.get(member)
    if (link === undefined) return
    this.links.delete(member)
    clearTimeout(link.retry)
    link.stream?.abort(new Error('member left'))
  }

  close (): void {
    this.closed = true
    for (const [member] of this.links) this.forget(member)
  }

  private wantFrame (link: Link, w: WantUpdate): Uint8Array {
    return encodeJsonFrame(SLOT_FRAME.WANT, { v: SLOTS_VERSION, model: w.model, waiting: w.waiting, heads_ms: w.headsMs.map((x) => Math.max(0, Math.round(x))), seen: link.seen })
  }

  private write (member: string, link: Link, frame: Uint8Array): void {
    const s = link.stream
    if (s !== null && s.status === 'open' && s.writeStatus === 'writable') {
      s.send(frame)
      return
    }
    // Not open: what matters survives in link.wants, sent whole when it opens.
    this.open(member, link)
  }

  private open (member: string, link: Link): void {
    if (link.opening || this.closed || link.retry !== undefined) return
    link.opening = true
    void (async () => {
      let stream: Stream
      try {
        stream = await this.c.node.dialProtocol(peerIdFromString(member), SLOTS_PROTOCOL, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS), negotiateFully: false, maxOutboundStreams: MAX_SLOT_STREAMS })
      } catch (err) {
        link.opening = false
        this.c.log.debug({ member, err: (err as Error).message }, 'cannot open a slots stream')
        this.again(member, link)
        return
      }
      link.opening = false
      if (this.closed || this.links.get(member) !== link) { stream.abort(new Error('not needed')); return }
      stream.inactivityTimeout = STREAM_IDLE_MS
      link.stream = stream
      link.seen = 0
      this.attach(member, link, stream)
      // A new stream starts from nothing at the member: send every current
      // want (declines are not needed: the offers of a closed stream went with it).
      for (const w of link.wants.values()) stream.send(this.wantFrame(link, w))
    })()
  }

  /** Opens again later while something is still wanted; otherwise forgets the member. */
  private again (member: string, link: Link): void {
    link.stream = null
    if (this.closed || this.links.get(member) !== link) return
    if (link.wants.size === 0) { this.links.delete(member); return }
    link.retry = setTimeout(() => { link.retry = undefined; this.open(member, link) }, REDIAL_MS)
    link.retry.unref()
  }

  private attach (member: string, link: Link, stream: Stream): void {
    readJsonFrames(stream, (type, doc) => {
      if (type !== SLOT_FRAME.OFFER) { stream.abort(new Error(`unexpected slots frame ${type}`)); return false }
      const offer = offerSchema.safeParse(doc)
      if (!offer.success) { stream.abort(new Error('malformed offer')); return false }
      this.c.onOffer(member, offer.data)
      if (offer.data.seq > link.seen) link.seen = offer.data.seq
      return true
    })
    stream.addEventListener('close', () => {
      if (link.stream === stream) this.again(member, link)
    })
  }
}
