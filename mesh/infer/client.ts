/**
 * The entry node's side of /meshd/infer/1: sends a request to a peer over
 * the mesh and returns its response head as soon as it arrives, with a body
 * that streams frame by frame. Encrypted and authenticated by the mesh, so
 * the peer needs no public HTTP port (a workstation behind NAT works).
 *
 * Streams are reused, one request at a time (as HTTP/1.1 keep-alive reuses
 * connections): opening a yamux stream and negotiating its protocol costs
 * frames and a turn of both event loops per request. A stream that ended its
 * last answer cleanly (RES_END) goes back to its peer's idle pool; one that
 * was aborted or failed is discarded. No request waits behind another on a
 * stream, so a slow reader never blocks anyone else.
 */
import type { PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { MeshNode } from '../node.ts'
import { FRAME, FrameDecoder, encodeFrame, encodeJsonFrame, decodeJson, BODY_FRAME_BYTES, type Frame } from './frames.ts'
import { INFER_PROTOCOL, INFER_VERSION, responseHeadSchema, trailerSchema, errorSchema } from './schemas.ts'
import { FrameWriter } from './writer.ts'
import { deadlines, type Deadline } from './deadlines.ts'
import { ChunkChannel, UpstreamError, type UpstreamRequest, type UpstreamResponse } from './upstream.ts'
import type { LoadReport } from './schemas.ts'

export const MAX_INFER_STREAMS = 4096
/** How long a stream waits in the idle pool before it is closed; the server keeps idle streams longer. */
export const IDLE_STREAM_MS = 30_000
export const SERVER_IDLE_STREAM_MS = 60_000
const MAX_IDLE_PER_PEER = 64
const DIAL_TIMEOUT_MS = 5000
const EMPTY = new Uint8Array(0)

interface Idle { stream: Stream, since: number }

export class InferClient {
  private readonly node: MeshNode
  private readonly idle = new Map<string, Idle[]>()
  private sweeper: NodeJS.Timeout | undefined

  constructor (node: MeshNode) {
    this.node = node
    this.sweeper = setInterval(() => { this.sweep() }, IDLE_STREAM_MS / 2)
    this.sweeper.unref()
  }

  /**
   * Sends `req` to `peer`. Resolves with the response head; rejects with a
   * retryable UpstreamError when nothing reached the replica.
   */
  async request (to: PeerId | string, req: UpstreamRequest, onTrailer?: (load: LoadReport) => void): Promise<UpstreamResponse> {
    const peer = typeof to === 'string' ? peerIdFromString(to) : to
    const reused = this.takeIdle(peer)
    if (reused !== null) {
      try {
        return await this.exchange(peer, reused, req, onTrailer)
      } catch (err) {
        // An idle stream the peer had just closed: try once more on a fresh one.
        if (!(err instanceof UpstreamError) || !err.retryable) throw err
      }
    }
    return this.exchange(peer, await this.open(peer, req), req, onTrailer)
  }

  close (): void {
    clearInterval(this.sweeper)
    for (const list of this.idle.values()) for (const i of list) i.stream.abort(new Error('closing'))
    this.idle.clear()
  }

  private async open (peer: PeerId, req: UpstreamRequest): Promise<Stream> {
    const remaining = req.deadline - Date.now()
    if (remaining <= 0) throw new UpstreamError('deadline_exceeded', 'the request deadline passed before it reached a member', false)
    try {
      // negotiateFully false: the protocol name goes out with the first
      // request head, saving a round trip (multistream-select's optimistic mode).
      return await this.node.dialProtocol(peer, INFER_PROTOCOL, { signal: AbortSignal.timeout(Math.min(remaining, DIAL_TIMEOUT_MS)), maxOutboundStreams: MAX_INFER_STREAMS, negotiateFully: false })
    } catch (err) {
      throw new UpstreamError('dial_failed', `cannot open a stream to ${peer.toString()}: ${(err as Error).message}`, true)
    }
  }

  private takeIdle (peer: PeerId): Stream | null {
    const list = this.idle.get(peer.toString())
    while (list !== undefined && list.length > 0) {
      const { stream } = list.pop()!
      if (stream.status === 'open' && stream.writeStatus === 'writable' && stream.readStatus !== 'closed') return stream
    }
    return null
  }

  private putIdle (peer: PeerId, stream: Stream): void {
    const key = peer.toString()
    let list = this.idle.get(key)
    if (list === undefined) { list = []; this.idle.set(key, list) }
    if (list.length >= MAX_IDLE_PER_PEER || stream.status !== 'open') {
      void stream.close().catch(() => {})
      return
    }
    stream.inactivityTimeout = SERVER_IDLE_STREAM_MS
    list.push({ stream, since: Date.now() })
  }

  private sweep (): void {
    const cutoff = Date.now() - IDLE_STREAM_MS
    for (const [key, list] of this.idle) {
      const keep = list.filter((i) => i.since > cutoff && i.stream.status === 'open')
      for (const i of list) if (!keep.includes(i)) void i.stream.close().catch(() => {})
      if (keep.length === 0) this.idle.delete(key)
      else this.idle.set(key, keep)
    }
  }

  private async exchange (peer: PeerId, stream: Stream, req: UpstreamRequest, onTrailer?: (load: LoadReport) => void): Promise<UpstreamResponse> {
    const remaining = req.deadline - Date.now()
    if (remaining <= 0) {
      this.putIdle(peer, stream)
      throw new UpstreamError('deadline_exceeded', 'the request deadline passed before it reached a member', false)
    }
    // A queued LLM request may be silent for minutes: only the deadline ends it.
    stream.inactivityTimeout = remaining + 5000
    try {
      // One write for head, body and end when the body is small (the usual case).
      const writer = new FrameWriter(stream)
      writer.write(encodeJsonFrame(FRAME.REQ_HEAD, {
        v: INFER_VERSION, id: req.id, method: req.method, path: req.path, headers: req.headers, model: req.model, deadline_ms: Math.max(1, Math.floor(remaining)),
        ...(req.offer !== undefined ? { offer: req.offer } : {})
      }))
      for (let at = 0; at < req.body.byteLength; at += BODY_FRAME_BYTES) {
        writer.write(encodeFrame(FRAME.REQ_BODY, req.body.subarray(at, at + BODY_FRAME_BYTES)))
        await writer.drained()
      }
      writer.write(encodeFrame(FRAME.REQ_END, EMPTY))
      writer.flush()
    } catch (err) {
      stream.abort(err as Error)
      throw new UpstreamError('send_failed', `sending to ${peer.toString()} failed: ${(err as Error).message}`, true)
    }

    return new Promise<UpstreamResponse>((resolve, reject) => {
      const x = new Exchange(this, peer, stream, resolve, reject, onTrailer)
      x.deadline = deadlines.add(req.deadline, () => {
        stream.abort(new UpstreamError('deadline_exceeded', 'request deadline exceeded', false))
      })
      stream.addEventListener('message', x)
      stream.addEventListener('close', x)
    })
  }

  /** A stream whose exchange ended cleanly goes back to the pool (called by Exchange). */
  reuse (peer: PeerId, stream: Stream): void {
    this.putIdle(peer, stream)
  }
}

/**
 * One request's answer as it arrives on its stream: one object per request,
 * its frame handlers methods rather than closures, listening on the stream
 * as an event-listener object (handleEvent), as undici's parsers do.
 */
class Exchange {
  private readonly client: InferClient
  private readonly peer: PeerId
  private readonly stream: Stream
  private readonly resolve: (r: UpstreamResponse) => void
  private readonly reject: (e: Error) => void
  private readonly onTrailer: ((load: LoadReport) => void) | undefined
  private readonly decoder = new FrameDecoder()
  private readonly body: ChunkChannel
  private headSeen = false
  private finished = false
  deadline: Deadline | undefined

  constructor (client: InferClient, peer: PeerId, stream: Stream, resolve: (r: UpstreamResponse) => void, reject: (e: Error) => void, onTrailer: ((load: LoadReport) => void) | undefined) {
    this.client = client
    this.peer = peer
    this.stream = stream
    this.resolve = resolve
    this.reject = reject
    this.onTrailer = onTrailer
    this.body = new ChunkChannel((pause) => { if (pause) stream.pause(); else stream.resume() })
  }

  handleEvent (evt: Event): void {
    if (evt.type === 'message') this.onMessage(evt as unknown as { data: Uint8Array | { subarray: () => Uint8Array } })
    else if (evt.type === 'close') this.onClose(evt as unknown as { error?: Error })
  }

  private onMessage (evt: { data: Uint8Array | { subarray: () => Uint8Array } }): void {
    let frames: Frame[]
    try {
      frames = this.decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
    } catch (err) {
      this.stream.abort(err as Error)
      this.fail(new UpstreamError('protocol_error', (err as Error).message, !this.headSeen))
      return
    }
    for (const f of frames) if (!this.onFrame(f)) return
  }

  private onClose (evt: { error?: Error }): void {
    // Reset or closed without an end frame: the member (or the link) died.
    this.fail(new UpstreamError('stream_reset', `stream to ${this.peer.toString()} closed${evt.error !== undefined ? `: ${evt.error.message}` : ''}`, true))
  }

  /** Handles one frame; false when the exchange is over (later frames are not for it). */
  private onFrame (f: Frame): boolean {
    switch (f.type) {
      case FRAME.RES_BODY:
        if (!this.headSeen) break
        this.body.push(f.payload)
        return true
      case FRAME.RES_HEAD:
        if (this.headSeen) break
        return this.onHead(f.payload)
      case FRAME.RES_END:
        if (!this.headSeen) break
        this.onEnd(f.payload)
        return false
      case FRAME.ERROR:
        this.onError(f.payload)
        return false
    }
    this.stream.abort(new Error(`unexpected frame ${f.type}`))
    this.fail(new UpstreamError('protocol_error', `unexpected frame ${f.type} from member`, !this.headSeen))
    return false
  }

  private onHead (payload: Uint8Array): boolean {
    const head = responseHeadSchema.safeParse(safeJson(payload))
    if (!head.success) {
      this.stream.abort(new Error('malformed response head'))
      this.fail(new UpstreamError('protocol_error', 'malformed response head from member', true))
      return false
    }
    this.headSeen = true
    this.resolve({
      status: head.data.status,
      headers: head.data.headers,
      servedBy: head.data.served_by,
      ...(head.data.load !== undefined ? { load: head.data.load } : {}),
      body: this.body,
      abort: (reason?: Error) => { this.abort(reason) }
    })
    return true
  }

  private onEnd (payload: Uint8Array): void {
    const trailer = trailerSchema.safeParse(safeJson(payload))
    if (trailer.success && trailer.data.load !== undefined) this.onTrailer?.(trailer.data.load)
    this.finished = true
    this.detach()
    this.body.end()
    // A clean end: the stream is ready for the next request, unless bytes of a
    // later frame arrived (a protocol error), in which case it is not reused.
    if (this.decoder.pending === 0) this.client.reuse(this.peer, this.stream)
    else this.stream.abort(new Error('data after the end of an answer'))
  }

  private onError (payload: Uint8Array): void {
    const e = errorSchema.safeParse(safeJson(payload))
    const err = e.success
      ? new UpstreamError(e.data.code, e.data.message, e.data.retryable && !this.headSeen, e.data.load)
      : new UpstreamError('member_error', 'the member reported an error', !this.headSeen)
    const before = !this.headSeen
    this.fail(err)
    // A refusal before the head ends the exchange, not the stream: the
    // member keeps it for the next request (a full member refuses often).
    if (before && e.success && this.decoder.pending === 0) this.client.reuse(this.peer, this.stream)
    else void this.stream.close().catch(() => {})
  }

  /** The client went away: stop the far side's work (it sees the reset and aborts the replica's request). */
  private abort (reason?: Error): void {
    if (this.finished) return
    this.finished = true
    this.detach()
    this.body.end()
    this.stream.abort(reason ?? new Error('client gone'))
  }

  private fail (err: UpstreamError): void {
    if (this.finished) return
    this.finished = true
    this.detach()
    if (this.headSeen) this.body.fail(err)
    else this.reject(err)
  }

  private detach (): void {
    if (this.deadline !== undefined) deadlines.clear(this.deadline)
    this.stream.removeEventListener('message', this)
    this.stream.removeEventListener('close', this)
  }
}

function safeJson (payload: Uint8Array): unknown {
  try { return decodeJson(payload) } catch { return null }
}
