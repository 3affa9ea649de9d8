/**
 * The serving member's side of /meshd/infer/1: reads a request from a peer,
 * has the local replica serve it, and streams the answer back frame by
 * frame. When the peer goes away (its client disconnected, or it died), the
 * replica's request is aborted at once, which frees its slot.
 */
import type { Stream } from '@libp2p/interface'
import type { MeshNode } from '../node.ts'
import { FRAME, FrameDecoder, FrameError, encodeFrame, encodeJsonFrame, decodeJson } from './frames.ts'
import { INFER_PROTOCOL, REQUEST_ID_HEADER, requestHeadSchema, type RequestHead } from './schemas.ts'
import { MAX_INFER_STREAMS, SERVER_IDLE_STREAM_MS } from './client.ts'
import { FrameWriter } from './writer.ts'
import { UpstreamError, type UpstreamRequest, type UpstreamResponse } from './upstream.ts'
import type { LoadReport } from './schemas.ts'
import type { Startable } from '../startable.ts'

export interface InferServerInit {
  selfId: string
  maxBodyBytes: number
}

export interface InferServerComponents {
  node: MeshNode
  /** Serves a request from entry node `from` on the local replica; throws UpstreamError when it cannot. */
  serve: (req: UpstreamRequest, from: string) => Promise<UpstreamResponse>
  load: () => LoadReport
  log: { debug: (o: object, msg: string) => void, warn: (o: object, msg: string) => void }
}

export class InferServer implements Startable {
  private readonly init: InferServerInit
  private readonly c: InferServerComponents
  private readonly active = new Set<Stream>()
  /** Streams between requests (kept open for the client to reuse). */
  private readonly idle = new Set<Stream>()

  constructor (init: InferServerInit, components: InferServerComponents) {
    this.init = init
    this.c = components
  }

  async start (): Promise<void> {
    await this.c.node.handle(INFER_PROTOCOL, (stream, connection) => { this.accept(stream, connection.remotePeer.toString()) }, { maxInboundStreams: MAX_INFER_STREAMS, maxOutboundStreams: MAX_INFER_STREAMS })
  }

  async stop (): Promise<void> {
    await this.c.node.unhandle(INFER_PROTOCOL)
  }

  /** Streams carrying a request now (what a drain waits for). */
  get activeStreams (): number {
    return this.active.size - this.idle.size
  }

  /**
   * Resets the streams kept open between requests (draining: no more will
   * come). A reset, not a close: the client does not read an idle stream, so
   * only a reset frees both ends at once.
   */
  closeIdle (): void {
    for (const s of this.idle) s.abort(new Error('member draining'))
    this.idle.clear()
  }

  /**
   * One stream carries one request at a time, and may carry more after it:
   * the client reuses a stream whose last answer ended cleanly.
   */
  private accept (stream: Stream, from: string): void {
    this.active.add(stream)
    const decoder = new FrameDecoder()
    let head: RequestHead | null = null
    let parts: Uint8Array[] = []
    let size = 0
    let running = false
    let upstream: UpstreamResponse | null = null
    let closed = false

    const refuse = (code: string, message: string): void => {
      try {
        stream.send(encodeJsonFrame(FRAME.ERROR, { code, message, retryable: false }))
        void stream.close().catch(() => {})
      } catch {
        stream.abort(new Error(message))
      }
    }
    stream.addEventListener('close', () => {
      closed = true
      this.active.delete(stream)
      this.idle.delete(stream)
      // The peer went away mid-answer: stop the replica's work now.
      upstream?.abort(new Error('peer closed the stream'))
    })
    stream.addEventListener('message', (evt) => {
      let frames
      try {
        frames = decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
      } catch (err) {
        refuse('protocol_error', (err as FrameError).message)
        return
      }
      for (const f of frames) {
        if (running) { refuse('protocol_error', 'a new request before the last answer ended'); return }
        if (head === null) {
          if (f.type !== FRAME.REQ_HEAD) { refuse('protocol_error', 'expected a request head'); return }
          let raw: unknown = null
          try { raw = decodeJson(f.payload) } catch {}
          const parsed = requestHeadSchema.safeParse(raw)
          if (!parsed.success) { refuse('bad_request', `malformed request head: ${parsed.error.issues[0]?.message ?? ''}`); return }
          head = parsed.data
          this.idle.delete(stream)
          stream.inactivityTimeout = head.deadline_ms + 5000
        } else if (f.type === FRAME.REQ_BODY) {
          size += f.payload.byteLength
          if (size > this.init.maxBodyBytes) { refuse('body_too_large', `request body over ${this.init.maxBodyBytes} bytes`); return }
          parts.push(f.payload.slice())
        } else if (f.type === FRAME.REQ_END) {
          running = true
          const h: RequestHead = head
          const body = concat(parts, size)
          head = null
          parts = []
          size = 0
          void this.run(stream, from, h, body, (u) => { upstream = u; if (closed) u.abort(new Error('peer closed the stream')) }).then((reusable) => {
            upstream = null
            running = false
            if (!reusable || closed) return
            stream.inactivityTimeout = SERVER_IDLE_STREAM_MS
            this.idle.add(stream)
          })
        } else {
          refuse('protocol_error', `unexpected frame ${f.type}`)
          return
        }
      }
    })
  }

  /** Serves one request; resolves true when the answer ended cleanly and the stream may carry another. */
  private async run (stream: Stream, from: string, head: RequestHead, body: Uint8Array, attach: (u: UpstreamResponse) => void): Promise<boolean> {
    let up: UpstreamResponse
    try {
      up = await this.c.serve({ id: head.id, method: head.method, path: head.path, headers: withRequestId(head.headers, head.id), body, model: head.model, deadline: Date.now() + head.deadline_ms, ...(head.offer !== undefined ? { offer: head.offer } : {}) }, from)
    } catch (err) {
      const e = err instanceof UpstreamError ? err : new UpstreamError('internal_error', (err as Error).message, false)
      // Refused before the replica answered: the stream stays open for the
      // client's next request (it reuses a stream whose exchange ended cleanly).
      try {
        stream.send(encodeJsonFrame(FRAME.ERROR, { code: e.code, message: e.message, retryable: e.retryable, ...(e.load !== undefined ? { load: e.load } : {}) }))
        return stream.status === 'open'
      } catch {
        return false
      }
    }
    attach(up)
    const writer = new FrameWriter(stream)
    try {
      writer.write(encodeJsonFrame(FRAME.RES_HEAD, { status: up.status, headers: up.headers, served_by: this.init.selfId, load: this.c.load() }))
      for await (const chunk of up.body) {
        writer.write(encodeFrame(FRAME.RES_BODY, chunk))
        await writer.drained()
      }
      writer.write(encodeJsonFrame(FRAME.RES_END, { load: this.c.load() }))
      writer.flush()
      return true
    } catch (err) {
      up.abort(err as Error)
      if (stream.status === 'open') {
        try {
          stream.send(encodeJsonFrame(FRAME.ERROR, { code: 'replica_failed', message: `the replica failed mid-answer: ${(err as Error).message}`, retryable: false }))
          await stream.close()
        } catch {
          stream.abort(err as Error)
        }
      }
      this.c.log.debug({ err: (err as Error).message }, 'infer stream ended early')
      return false
    }
  }
}

/**
 * The head's `id` is the request id: the replica gets it as `x-request-id`.
 * Entry nodes send it among the headers too; one that did not still has it
 * arrive (a header it did send is left as it is).
 */
function withRequestId (headers: Array<[string, string]>, id: string): Array<[string, string]> {
  for (const [k] of headers) if (k.toLowerCase() === REQUEST_ID_HEADER) return headers
  return [...headers, [REQUEST_ID_HEADER, id]]
}

function concat (parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}
