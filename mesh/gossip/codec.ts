/**
 * Decoding of gossip payloads: a size cap first (cheap, before any parsing),
 * then JSON, then the schema. The reason for a rejection is returned, not
 * thrown, so the topic validator can count it and move on; nothing a peer
 * sends can throw out of here.
 */
import type { z } from 'zod'

export type RejectReason = 'oversized' | 'malformed' | 'schema' | 'spoofed' | 'wrong_cluster'

export type Decoded<T> = { ok: true, value: T } | { ok: false, reason: RejectReason, detail: string }

const decoder = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

export function decodeJson<S extends z.ZodType> (data: Uint8Array, schema: S, maxBytes: number): Decoded<z.output<S>> {
  if (data.byteLength > maxBytes) return { ok: false, reason: 'oversized', detail: `${data.byteLength} bytes > ${maxBytes}` }
  let raw: unknown
  try {
    raw = JSON.parse(decoder.decode(data))
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message.slice(0, 200) }
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return { ok: false, reason: 'schema', detail: issue === undefined ? 'invalid' : `${issue.path.join('.')}: ${issue.message}` }
  }
  return { ok: true, value: parsed.data }
}

export function encodeJson (value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}
