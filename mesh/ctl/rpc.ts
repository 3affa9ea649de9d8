/**
 * Control requests between members over the mesh (`/meshd/<cluster>/ctl/1`):
 * one JSON request and one JSON answer per stream. `meshd burst` on any node
 * travels to the leader this way; the leader tells a burst member to drain
 * this way. Authenticated by the mesh; every message validated.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import type { MeshNode } from '../node.ts'
import { readJson, sendJson } from '../streams.ts'

export const CTL_VERSION = 1
const MAX_BYTES = 1 << 20

export function ctlProtocol (cluster: string): string {
  return `/meshd/${cluster}/ctl/1`
}

export const ctlRequestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('burst'), id: z.string().max(128), count: z.number().int().min(1).max(10_000), provider: z.string().max(128).optional(), spot: z.boolean().optional() }),
  z.object({ type: z.literal('terminate'), id: z.string().max(128), count: z.number().int().min(1).max(10_000).optional(), all: z.boolean().optional(), provider: z.string().max(128).optional() }),
  z.object({ type: z.literal('watch'), keys: z.array(z.string().max(256)).max(10_000) }),
  z.object({ type: z.literal('drain'), reason: z.string().max(1024) }),
  z.object({ type: z.literal('remove_voter'), id: z.string().max(128) })
])

export type CtlRequest = z.output<typeof ctlRequestSchema>

const envelopeSchema = z.object({ v: z.literal(CTL_VERSION), request: z.unknown() })
const answerSchema = z.union([
  z.object({ v: z.literal(CTL_VERSION), ok: z.literal(true), result: z.unknown() }),
  z.object({ v: z.literal(CTL_VERSION), ok: z.literal(false), error: z.object({ code: z.string().max(64), message: z.string().max(4096) }) })
])

export class CtlError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'CtlError'
    this.code = code
  }
}

export type CtlHandler = (req: CtlRequest, from: string) => Promise<unknown>

export class Ctl {
  private readonly node: MeshNode
  private readonly protocol: string
  private readonly handlers = new Map<CtlRequest['type'], CtlHandler>()

  constructor (node: MeshNode, cluster: string) {
    this.node = node
    this.protocol = ctlProtocol(cluster)
  }

  handle (type: CtlRequest['type'], handler: CtlHandler): void {
    this.handlers.set(type, handler)
  }

  async start (): Promise<void> {
    await this.node.handle(this.protocol, (stream, conn) => {
      void (async () => {
        let answer: unknown
        try {
          const env = envelopeSchema.safeParse(await readJson(stream, MAX_BYTES))
          const req = env.success ? ctlRequestSchema.safeParse(env.data.request) : null
          if (req === null || !req.success) throw new CtlError('bad_request', 'malformed control request')
          const h = this.handlers.get(req.data.type)
          if (h === undefined) throw new CtlError('unsupported', `this member does not handle ${req.data.type}`)
          answer = { v: CTL_VERSION, ok: true, result: await h(req.data, conn.remotePeer.toString()) }
        } catch (err) {
          answer = { v: CTL_VERSION, ok: false, error: { code: err instanceof CtlError ? err.code : 'failed', message: (err as Error).message } }
        }
        await sendJson(stream, answer).catch(() => { stream.abort(new Error('could not answer')) })
      })()
    }, { maxInboundStreams: 256, maxOutboundStreams: 256 })
  }

  async stop (): Promise<void> {
    await this.node.unhandle(this.protocol).catch(() => {})
  }

  /**
   * Sends a request to a member and waits for its answer. Failing to dial is
   * 'unreachable' (the request was not sent); once it may have been sent, a
   * missing or broken answer is 'no_answer' (or 'timeout'): the member may have
   * acted on it, so the caller must not report it as not done.
   */
  async call (to: string, request: CtlRequest, timeoutMs: number): Promise<unknown> {
    const signal = AbortSignal.timeout(timeoutMs)
    let stream
    try {
      stream = await this.node.dialProtocol(peerIdFromString(to), this.protocol, { signal })
    } catch (err) {
      throw new CtlError('unreachable', `cannot reach ${to}: ${(err as Error).message}`)
    }
    const onAbort = (): void => { stream.abort(new Error('timed out')) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await sendJson(stream, { v: CTL_VERSION, request })
      const answer = answerSchema.safeParse(await readJson(stream, MAX_BYTES))
      if (!answer.success) throw new CtlError('bad_answer', 'malformed answer')
      if (!answer.data.ok) throw new CtlError(answer.data.error.code, answer.data.error.message)
      return answer.data.result
    } catch (err) {
      if (err instanceof CtlError && err.code !== 'bad_answer') throw err
      // E.g. the member died mid-request: its stream ends and the empty answer is no JSON.
      throw new CtlError(signal.aborted ? 'timeout' : 'no_answer', signal.aborted ? `${to} did not answer within ${timeoutMs} ms` : `${to} took the request but no answer came back (${(err as Error).message})`)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
}
