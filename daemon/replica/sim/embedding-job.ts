// An embeddings request on the wire. It holds a slot for the first-token time
// only (a forward pass, no decoding), then answers with deterministic unit
// vectors, as floats or as base64 little-endian float32 (the official SDK asks
// for base64 by default).

import type { ServerResponse } from 'node:http'
import { Job } from './scheduler.ts'
import { embedVector } from './text.ts'
import type { JobObserver, WireJob } from './completion-job.ts'

export class EmbeddingJob extends Job implements WireJob {
  readonly route = 'embeddings'
  readonly model: string
  private readonly res: ServerResponse
  private readonly inputs: readonly string[]
  private readonly dimensions: number
  private readonly base64: boolean
  private readonly observer: JobObserver

  constructor(
    res: ServerResponse,
    model: string,
    inputs: readonly string[],
    promptTokens: number,
    dimensions: number,
    base64: boolean,
    observer: JobObserver,
  ) {
    super(0, promptTokens, 'stop')
    this.res = res
    this.model = model
    this.inputs = inputs
    this.dimensions = dimensions
    this.base64 = base64
    this.observer = observer
  }

  override onFinish(): void {
    this.observer.ended(this)
    if (this.res.destroyed) return
    const data = this.inputs.map((text, index) => {
      const v = embedVector(text, this.dimensions)
      const embedding = this.base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v)
      return { object: 'embedding', index, embedding }
    })
    const body = JSON.stringify({
      object: 'list',
      data,
      model: this.model,
      usage: { prompt_tokens: this.promptTokens, total_tokens: this.promptTokens },
    })
    this.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    this.res.end(body)
  }
}
