/**
 * The entry node's side of /meshd/infer/1: sends a request to a peer over
 * the mesh and returns its response head as soon as it arrives, with a body
 * that streams frame by frame. Encrypted and authenticated by the mesh, so
 * the peer needs no public HTTP port (a workstation behind NAT works).
 */
import type { PeerId, Stream } from '@libp2p/interface'
import type { MeshNode } from '../node.ts'
import { FRAME, FrameDecoder, encodeFrame, encodeJsonFrame, decodeJson, BODY_FRAME_BYTES } from './frames.ts'
import { INFER_PROTOCOL, INFER_VERSION, responseHeadSchema, trailerSchema, errorSchema } from './schemas.ts'
import { FrameWriter } from './writer.ts'
import { ChunkChannel, UpstreamError, type UpstreamRequest, type UpstreamResponse } from '../../daemon/proxy/upstream.ts'
import type { LoadReport } from '../../daemon/proxy/load-view.ts'

export const MAX_INFER_STREAMS = 4096
const DIAL_TIMEOUT_MS = 5000
const EMPTY = new Uint8Array(0)

export async function inferRemote (node: MeshNode, peer: PeerId, req: UpstreamRequest, onTrailer?: (load: LoadReport) => void): Promise<UpstreamResponse> {
  const remaining = req.deadline - Date.now()
  if (remaining <= 0) throw new UpstreamError('deadline_exceeded', 'the request deadline passed before it reached a member', false)
  let stream: Stream
  try {
    // negotiateFully false: the protocol name goes out with the request head,
    // saving a round trip per request (multistream-select's optimistic mode).
    stream = await node.dialProtocol(peer, INFER_PROTOCOL, { signal: AbortSignal.timeout(Math.min(remaining, DIAL_TIMEOUT_MS)), maxOutboundStreams: MAX_INFER_STREAMS, negotiateFully: false })
  } catch (err) {
    throw new UpstreamError('dial_failed', `cannot open a stream to ${peer.toString()}: ${(err as Error).message}`, true)
  }
  // A queued LLM request may be silent for minutes: only the deadline ends it.
  stream.inactivityTimeout = remaining + 5000

  try {
    // One write for head, body and end when the body is small (the usual case).
    const writer = new FrameWriter(stream)
    writer.write(encodeJsonFrame(FRAME.REQ_HEAD, {
      v: INFER_VERSION, id: req.id, method: req.method, path: req.path, headers: req.headers, model: req.model, deadline_ms: Math.max(1, Math.floor(remaining))
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
    const decoder = new FrameDecoder()
    const body = new ChunkChannel((pause) => { if (pause) stream.pause(); else stream.resume() })
    let headSeen = false
    let finished = false
    const deadline = setTimeout(() => {
      stream.abort(new UpstreamError('deadline_exceeded', 'request deadline exceeded', false))
    }, remaining)
    const fail = (err: UpstreamError): void => {
      if (finished) return
      finished = true
      clearTimeout(deadline)
      if (headSeen) body.fail(err)
      else reject(err)
    }
    stream.addEventListener('message', (evt) => {
      let frames
      try {
        frames = decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
      } catch (err) {
        stream.abort(err as Error)
        fail(new UpstreamError('protocol_error', (err as Error).message, !headSeen))
        return
      }
      for (const f of frames) {
        if (f.type === FRAME.RES_BODY && headSeen) {
          body.push(f.payload)
        } else if (f.type === FRAME.RES_HEAD && !headSeen) {
          const head = responseHeadSchema.safeParse(safeJson(f.payload))
          if (!head.success) {
            stream.abort(new Error('malformed response head'))
            fail(new UpstreamError('protocol_error', 'malformed response head from member', true))
            return
          }
          headSeen = true
          resolve({
            status: head.data.status,
            headers: head.data.headers,
            servedBy: head.data.served_by,
            ...(head.data.load !== undefined ? { load: head.data.load } : {}),
            body,
            abort: (reason?: Error) => {
              if (finished) return
              finished = true
              clearTimeout(deadline)
              body.end()
              stream.abort(reason ?? new Error('client gone'))
            }
          })
        } else if (f.type === FRAME.RES_END) {
          const trailer = trailerSchema.safeParse(safeJson(f.payload))
          if (trailer.success && trailer.data.load !== undefined) onTrailer?.(trailer.data.load)
          finished = true
          clearTimeout(deadline)
          body.end()
          void stream.close().catch(() => {})
        } else if (f.type === FRAME.ERROR) {
          const e = errorSchema.safeParse(safeJson(f.payload))
          const err = e.success
            ? new UpstreamError(e.data.code, e.data.message, e.data.retryable && !headSeen)
            : new UpstreamError('member_error', 'the member reported an error', !headSeen)
          fail(err)
          void stream.close().catch(() => {})
        } else {
          stream.abort(new Error(`unexpected frame ${f.type}`))
          fail(new UpstreamError('protocol_error', `unexpected frame ${f.type} from member`, !headSeen))
          return
        }
      }
    })
    stream.addEventListener('close', (evt) => {
      if (finished) return
      // Reset or closed without an end frame: the member (or the link) died.
      fail(new UpstreamError('stream_reset', `stream to ${peer.toString()} closed${evt.error !== undefined ? `: ${evt.error.message}` : ''}`, true))
    })
  })
}

function safeJson (payload: Uint8Array): unknown {
  try { return decodeJson(payload) } catch { return null }
}
