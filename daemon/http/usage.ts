/**
 * Token counts from the replica's own `usage` object, for the access log,
 * without parsing answers on the hot path. Per chunk the relay only keeps a
 * reference to it (`BodyTail.keep`: no copy, no scan); once the answer has
 * ended, the last few kilobytes are searched once for the last `"usage"` key.
 * That finds it in a plain JSON answer (where it is near the end) and in a
 * stream whose final chunk carries it (`stream_options.include_usage`; the
 * earlier chunks say `"usage":null`, the last one wins). Inside generated
 * text a quote is escaped (`\"usage\"`), so the bare key is never content.
 */

export interface Usage {
  prompt_tokens?: number
  completion_tokens?: number
  total_tokens?: number
}

/** Chunks kept: an SSE usage event split over a few network chunks still fits. */
const TAIL_CHUNKS = 8
/** Bytes searched at the end of an answer. */
export const TAIL_BYTES = 16 * 1024
const KEY = Buffer.from('"usage"')

/** The last TAIL_CHUNKS chunks of a body, by reference, in a fixed ring. */
export class BodyTail {
  private readonly ring: Array<Uint8Array | undefined> = new Array(TAIL_CHUNKS)
  private n = 0

  keep (chunk: Uint8Array): void {
    this.ring[this.n++ % TAIL_CHUNKS] = chunk
  }

  /** The kept chunks in order, joined, cut to the last TAIL_BYTES. */
  bytes (): Buffer {
    const parts: Uint8Array[] = []
    let size = 0
    for (let i = this.n - 1; i >= Math.max(0, this.n - TAIL_CHUNKS) && size < TAIL_BYTES; i--) {
      const c = this.ring[i % TAIL_CHUNKS]!
      parts.push(c)
      size += c.byteLength
    }
    parts.reverse()
    const all = Buffer.concat(parts, size)
    return size > TAIL_BYTES ? all.subarray(size - TAIL_BYTES) : all
  }

  usage (): Usage | null {
    return this.n === 0 ? null : findUsage(this.bytes())
  }
}

/** The last `"usage": {…}` object in `text` with its token counts, or null. */
export function findUsage (text: Buffer): Usage | null {
  const at = text.lastIndexOf(KEY)
  if (at < 0) return null
  const open = text.indexOf(0x7b /* { */, at + KEY.length)
  if (open < 0) return null
  // Between the key and the brace only a colon and blanks: `"usage":null` has no object.
  if (text.subarray(at + KEY.length, open).toString('latin1').trim() !== ':') return null
  // Balanced braces (usage holds numbers and small objects such as prompt_tokens_details, no strings with braces).
  let depth = 0
  let end = -1
  for (let i = open; i < text.length; i++) {
    const b = text[i]
    if (b === 0x7b) depth++
    else if (b === 0x7d && --depth === 0) { end = i + 1; break }
  }
  if (end < 0) return null
  let doc: unknown
  try { doc = JSON.parse(text.subarray(open, end).toString('utf8')) } catch { return null }
  if (doc === null || typeof doc !== 'object') return null
  const u = doc as Record<string, unknown>
  const out: Usage = {}
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens'] as const) {
    const v = u[k]
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) out[k] = v
  }
  return Object.keys(out).length === 0 ? null : out
}
