/**
 * Coalesces the frames written within one turn of the event loop into one
 * stream write. A request (head, body, end) or a short answer (head, body,
 * end) then costs one yamux frame, one noise and one pnet encryption and one
 * TCP write instead of three; a stream of tokens is unchanged (one per turn).
 */
import type { Stream } from '@libp2p/interface'

/** Flush at once past this many buffered bytes. */
const FLUSH_BYTES = 64 * 1024

export class FrameWriter {
  private readonly stream: Stream
  private pending: Uint8Array[] = []
  private size = 0
  private scheduled = false
  private blocked: Promise<void> | null = null

  constructor (stream: Stream) {
    this.stream = stream
  }

  /** Queues a frame; it goes out at the end of this event-loop turn (or at once when large). */
  write (frame: Uint8Array): void {
    this.pending.push(frame)
    this.size += frame.byteLength
    if (this.size >= FLUSH_BYTES) { this.flush(); return }
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => { this.scheduled = false; this.flush() })
    }
  }

  /** Resolves when the stream can take more (after a write the transport could not absorb). */
  drained (): Promise<void> {
    return this.blocked ?? Promise.resolve()
  }

  /** Sends what is queued now. Throws if the stream is closed. */
  flush (): void {
    if (this.pending.length === 0) return
    const data = this.pending.length === 1 ? this.pending[0]! : concat(this.pending, this.size)
    this.pending = []
    this.size = 0
    if (this.stream.status !== 'open' || this.stream.writeStatus !== 'writable') return
    if (!this.stream.send(data) && this.blocked === null) {
      this.blocked = this.stream.onDrain().catch(() => {}).finally(() => { this.blocked = null })
    }
  }

  /** Flushes and closes our writable end. */
  async close (): Promise<void> {
    this.flush()
    await this.stream.close()
  }
}

function concat (parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}
