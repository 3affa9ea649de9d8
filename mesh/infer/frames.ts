/**
 * Framing of the /meshd/infer/1 and /meshd/slots/1 stream protocols. A libp2p stream is a byte
 * stream (yamux may split or join writes), so messages are framed:
 *
 *   [type: u8][length: u32 big-endian][payload: length bytes]
 *
 * Heads and trailers are JSON (validated by schemas.ts); bodies are raw
 * bytes, forwarded as they arrive, never re-chunked or buffered whole.
 */

export const FRAME = {
  REQ_HEAD: 1,
  REQ_BODY: 2,
  REQ_END: 3,
  RES_HEAD: 4,
  RES_BODY: 5,
  RES_END: 6,
  ERROR: 7
} as const

export type FrameType = typeof FRAME[keyof typeof FRAME]

/** A frame larger than this is a protocol violation (bodies are sent in smaller pieces). */
export const MAX_FRAME_BYTES = 1 << 20
/** Request bodies are cut into frames of at most this size. */
export const BODY_FRAME_BYTES = 64 * 1024

const HEADER = 5
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeFrame (type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + payload.byteLength)
  out[0] = type
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(1, payload.byteLength)
  out.set(payload, HEADER)
  return out
}

export function encodeJsonFrame (type: number, value: unknown): Uint8Array {
  return encodeFrame(type, encoder.encode(JSON.stringify(value)))
}

export function decodeJson (payload: Uint8Array): unknown {
  return JSON.parse(decoder.decode(payload))
}

export class FrameError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'FrameError'
  }
}

export interface Frame { type: number, payload: Uint8Array }

/**
 * Incremental decoder: push the chunks a stream delivers, take whole frames.
 * Payloads are views into the received chunk where a frame fits in one
 * (the common case for body frames), copied only when a frame spans chunks.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = []
  private buffered = 0

  push (chunk: Uint8Array): Frame[] {
    this.chunks.push(chunk)
    this.buffered += chunk.byteLength
    const out: Frame[] = []
    for (;;) {
      if (this.buffered < HEADER) return out
      const head = this.peek(HEADER)
      const length = new DataView(head.buffer, head.byteOffset, HEADER).getUint32(1)
      if (length > MAX_FRAME_BYTES) throw new FrameError(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`)
      if (this.buffered < HEADER + length) return out
      const frame = this.take(HEADER + length)
      out.push({ type: frame[0]!, payload: frame.subarray(HEADER) })
    }
  }

  /** Bytes received but not yet part of a whole frame. */
  get pending (): number {
    return this.buffered
  }

  private peek (n: number): Uint8Array {
    const first = this.chunks[0]!
    if (first.byteLength >= n) return first.subarray(0, n)
    return this.copy(n, false)
  }

  private take (n: number): Uint8Array {
    const first = this.chunks[0]!
    if (first.byteLength >= n) {
      const view = first.subarray(0, n)
      if (first.byteLength === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      this.buffered -= n
      return view
    }
    return this.copy(n, true)
  }

  private copy (n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n)
    let at = 0
    let i = 0
    while (at < n) {
      const c = this.chunks[i]!
      const k = Math.min(c.byteLength, n - at)
      out.set(c.subarray(0, k), at)
      at += k
      if (consume) {
        if (k === c.byteLength) { this.chunks.shift(); continue }
        this.chunks[0] = c.subarray(k)
      }
      i++
    }
    if (consume) this.buffered -= n
    return out
  }
}
