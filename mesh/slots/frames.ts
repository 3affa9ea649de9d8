/**
 * Reading /meshd/slots/1 frames off a long-lived stream, for both ends:
 * each frame's type and its JSON payload (null when it is not JSON, for the
 * caller's schema to refuse); a framing error resets the stream.
 */
import type { Stream } from '@libp2p/interface'
import { FrameDecoder, decodeJson } from '../infer/frames.ts'

/** `onFrame` returns false once it has reset the stream: later frames are dropped. */
export function readJsonFrames (stream: Stream, onFrame: (type: number, doc: unknown) => boolean): void {
  const decoder = new FrameDecoder()
  stream.addEventListener('message', (evt) => {
    let frames
    try {
      frames = decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
    } catch (err) {
      stream.abort(err as Error)
      return
    }
    for (const f of frames) {
      let doc: unknown = null
      try { doc = decodeJson(f.payload) } catch {}
      if (!onFrame(f.type, doc)) return
    }
  })
}
