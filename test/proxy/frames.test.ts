/**
 * Framing of /meshd/infer/1: whatever way the byte stream is cut into
 * chunks, the same frames come out, in order, with their payloads intact.
 */
import t from 'tap'
import fc from 'fast-check'
import { FrameDecoder, encodeFrame, FRAME, MAX_FRAME_BYTES, FrameError, type FrameType } from '../../mesh/infer/frames.ts'

const types = Object.values(FRAME) as FrameType[]

t.test('any chunking decodes to the same frames', async (t) => {
  fc.assert(fc.property(
    fc.array(fc.record({ type: fc.constantFrom(...types), payload: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 20 }),
    fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 40 }),
    (frames, cuts) => {
      const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.payload)))
      const d = new FrameDecoder()
      const out: Array<{ type: number, payload: Uint8Array }> = []
      let at = 0
      let i = 0
      while (at < bytes.length) {
        const n = cuts[i++ % cuts.length]!
        for (const f of d.push(new Uint8Array(bytes.subarray(at, at + n)))) out.push({ type: f.type, payload: f.payload.slice() })
        at += n
      }
      if (d.pending !== 0 || out.length !== frames.length) return false
      return out.every((f, k) => f.type === frames[k]!.type && Buffer.compare(Buffer.from(f.payload), Buffer.from(frames[k]!.payload)) === 0)
    }), { numRuns: 500 })
  t.pass()
})

t.test('an oversized frame is a protocol error, not an allocation', async (t) => {
  const header = new Uint8Array(5)
  header[0] = FRAME.RES_BODY
  new DataView(header.buffer).setUint32(1, MAX_FRAME_BYTES + 1)
  t.throws(() => new FrameDecoder().push(header), FrameError)
})
