/**
 * Where a request body is checked (body-check.ts): small bodies at once on
 * the main thread, where the check costs a few microseconds and a hop to a
 * thread would cost more; larger ones in one worker thread (parse-worker.ts),
 * so that no body, however hostile, holds the event loop that also runs the
 * membership heartbeats and election timers.
 *
 * INLINE_MAX bounds the main thread's share: the worst 16 KiB body (all
 * object keys, the slowest thing V8 parses) costs about 1 ms; the worst 10 MiB
 * one 0.8 s, which would unseat a leader. Jobs wait in the worker's queue in
 * order; past MAX_QUEUED_BYTES a request is answered 503 (busy) rather than
 * held, and a job the worker has not answered within JOB_TIMEOUT_MS gets 503
 * and a fresh worker.
 */
import { Worker } from 'node:worker_threads'
import { checkBody, type BodyCheck } from './body-check.ts'
import type { Startable } from '../../mesh/startable.ts'
import { entryFile } from '../own-files.ts'

/** Bodies up to this size are checked on the main thread. */
export const INLINE_MAX = 16 * 1024
/** Bytes waiting for the worker at most; beyond, the parser is busy. */
const MAX_QUEUED_BYTES = 128 * 1024 * 1024
/** A job the worker has not finished in this long is given up (and the worker replaced). */
const JOB_TIMEOUT_MS = 15_000

/** To the worker: a body to check for a route. */
export interface ParseJob { id: number, path: string, bytes: Uint8Array }
/** From the worker: its check. */
export interface ParseDone { id: number, result: BodyCheck }

/** The parser could not take or finish the job: the request gets 503. */
export interface ParserBusy { busy: string }

interface Pending { resolve: (r: BodyCheck | ParserBusy) => void, bytes: number, timer: NodeJS.Timeout }

export class BodyParser implements Startable {
  private worker: Worker | undefined
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private queuedBytes = 0
  private stopped = false

  async start (): Promise<void> {}

  async stop (): Promise<void> {
    this.stopped = true
    this.failAll('the daemon is stopping')
    const w = this.worker
    this.worker = undefined
    await w?.terminate()
  }

  /** Checks `bytes` as a body for `path`; large bodies off the main thread. */
  check (bytes: Buffer, path: string): BodyCheck | ParserBusy | Promise<BodyCheck | ParserBusy> {
    if (bytes.byteLength <= INLINE_MAX) return checkBody(bytes, path)
    if (this.stopped) return { busy: 'the daemon is stopping' }
    if (this.queuedBytes + bytes.byteLength > MAX_QUEUED_BYTES) return { busy: `${Math.round(this.queuedBytes / 1048576)} MiB of request bodies are waiting to be parsed` }
    const worker = this.ensureWorker()
    const id = this.nextId++
    this.queuedBytes += bytes.byteLength
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.restart(`a request body took more than ${JOB_TIMEOUT_MS / 1000} s to parse`) }, JOB_TIMEOUT_MS)
      this.pending.set(id, { resolve, bytes: bytes.byteLength, timer })
      // Copied into the message: the bytes stay here to be forwarded.
      const job: ParseJob = { id, path, bytes }
      worker.postMessage(job)
    })
  }

  private ensureWorker (): Worker {
    if (this.worker !== undefined) return this.worker
    const w = new Worker(entryFile('parse-worker'))
    w.unref()
    w.on('message', (done: ParseDone) => { this.settle(done.id, done.result) })
    w.on('error', (err) => { if (this.worker === w) this.restart(`the body parser failed: ${err.message}`) })
    w.on('exit', () => { if (this.worker === w) this.restart('the body parser exited') })
    this.worker = w
    return w
  }

  private settle (id: number, result: BodyCheck | ParserBusy): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    clearTimeout(p.timer)
    this.queuedBytes -= p.bytes
    p.resolve(result)
  }

  /** Fails every waiting job and drops the worker; the next large body starts a new one. */
  private restart (why: string): void {
    const w = this.worker
    this.worker = undefined
    this.failAll(why)
    void w?.terminate()
  }

  private failAll (why: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { busy: why })
  }
}
