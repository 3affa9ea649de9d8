/**
 * Small helpers for libp2p 3 message streams: read everything the remote
 * sends, with a byte cap, and one-shot JSON request/response exchanges.
 */
import type { Stream } from '@libp2p/interface'

export class StreamLimitError extends Error {
  constructor (limit: number) {
    super(`stream sent more than ${limit} bytes`)
    this.name = 'StreamLimitError'
  }
}

/** Reads until the remote closes its writable end; aborts the stream past `maxBytes`. */
export async function readAll (stream: Stream, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of stream) {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
    total += bytes.byteLength
    if (total > maxBytes) {
      const err = new StreamLimitError(maxBytes)
      stream.abort(err)
      throw err
    }
    chunks.push(bytes)
  }
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.byteLength }
  return out
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Sends one JSON document and closes our writable end. */
export async function sendJson (stream: Stream, value: unknown): Promise<void> {
  stream.send(encoder.encode(JSON.stringify(value)))
  await stream.close()
}

export async function readJson (stream: Stream, maxBytes: number): Promise<unknown> {
  return JSON.parse(decoder.decode(await readAll(stream, maxBytes)))
}
