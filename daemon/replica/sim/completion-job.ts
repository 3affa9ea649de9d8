// A chat or text completion on the wire: turns the scheduler's start / tokens /
// finish events into OpenAI's SSE chunks or, unstreamed, one JSON body.
//
// Streaming chunks are built from a per-request prefix and suffix and a
// pre-encoded word, so a token costs two string concatenations and one write
// (one write per wake: tokens that fall due together go out together).

import { randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { Job, type FinishReason } from './scheduler.ts'
import { FIRST_PIECE_JSON, NEXT_PIECE_JSON, generateText, nextState, wordIndex } from './text.ts'

export type CompletionKind = 'chat' | 'text'

export interface CompletionSpec {
  kind: CompletionKind
  model: string
  promptTokens: number
  maxTokens: number
  /** Seed of the filler text (a hash of the prompt). */
  seed: number
  /** The pieces to emit when a stop sequence cut the text short; null means `maxTokens` filler words. */
  pieces: string[] | null
  stream: boolean
  includeUsage: boolean
}

/** Told when a request leaves the engine, however it ended. */
export interface JobObserver {
  ended(job: WireJob): void
}

/** What the HTTP layer needs from any job it put on the wire. */
export interface WireJob extends Job {
  readonly route: string
  readonly model: string
}

const FINGERPRINT = 'meshd-sim'
// Unique per process, short: ids are only compared, never parsed.
const ID_TAG = randomBytes(4).toString('hex')
let idSeq = 0

export function newId(prefix: string): string {
  return `${prefix}-${ID_TAG}${(++idSeq).toString(36)}`
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const

export class CompletionJob extends Job implements WireJob {
  readonly route: string
  readonly model: string
  private readonly res: ServerResponse
  private readonly spec: CompletionSpec
  private readonly observer: JobObserver
  private readonly id: string
  private readonly created: number
  private readonly head: string // `data: {"id":…,"choices":[{"index":0,` shared by every chunk
  private readonly tail: string // `]…}\n\n` closing every chunk
  private readonly tokenOpen: string // a token chunk up to its JSON-encoded text
  private readonly tokenClose: string // a token chunk after its text
  private rng: number

  constructor(res: ServerResponse, spec: CompletionSpec, observer: JobObserver) {
    const tokens = spec.pieces ? spec.pieces.length : spec.maxTokens
    super(tokens, spec.promptTokens, spec.pieces ? 'stop' : 'length')
    this.res = res
    this.spec = spec
    this.observer = observer
    this.model = spec.model
    this.route = spec.kind === 'chat' ? 'chat' : 'completions'
    this.id = newId(spec.kind === 'chat' ? 'chatcmpl' : 'cmpl')
    this.created = Math.floor(Date.now() / 1000)
    this.rng = spec.seed
    const object = spec.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'
    this.head =
      `data: {"id":"${this.id}","object":"${object}","created":${this.created},` +
      `"model":${JSON.stringify(spec.model)},"system_fingerprint":"${FINGERPRINT}","choices":[{"index":0,`
    this.tail = spec.includeUsage ? '],"usage":null}\n\n' : ']}\n\n'
    const chat = spec.kind === 'chat'
    this.tokenOpen = chat ? `${this.head}"delta":{"content":` : `${this.head}"text":`
    this.tokenClose = `${chat ? '}' : ''},"logprobs":null,"finish_reason":null}${this.tail}`
  }

  /** Commits to answering: streams get their 200 and headers now, even while queued (as vLLM does). */
  begin(): void {
    if (!this.spec.stream) return
    this.res.writeHead(200, SSE_HEADERS)
    this.res.flushHeaders()
  }

  override onStart(): void {
    if (!this.spec.stream || this.spec.kind !== 'chat' || this.res.destroyed) return
    this.res.write(`${this.head}"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}${this.tail}`)
  }

  override onTokens(count: number): void {
    if (!this.spec.stream || this.res.destroyed) return
    const open = this.tokenOpen
    const close = this.tokenClose
    const pieces = this.spec.pieces
    let out = ''
    for (let i = this.emitted - count; i < this.emitted; i++) {
      let piece: string
      if (pieces) {
        piece = JSON.stringify(pieces[i])
      } else {
        this.rng = nextState(this.rng)
        piece = (i === 0 ? FIRST_PIECE_JSON : NEXT_PIECE_JSON)[wordIndex(this.rng)] as string
      }
      out += open + piece + close
    }
    this.res.write(out)
  }

  override onFinish(): void {
    this.observer.ended(this)
    if (this.res.destroyed) return
    const reason: FinishReason = this.finishReason
    if (this.spec.stream) this.finishStream(reason)
    else this.finishPlain(reason)
  }

  private usage(): string {
    const p = this.promptTokens
    const c = this.emitted
    return `{"prompt_tokens":${p},"completion_tokens":${c},"total_tokens":${p + c}}`
  }

  private finishStream(reason: FinishReason): void {
    const last =
      this.spec.kind === 'chat'
        ? `"delta":{},"logprobs":null,"finish_reason":"${reason}"}`
        : `"text":"","logprobs":null,"finish_reason":"${reason}"}`
    let out = this.head + last + this.tail
    if (this.spec.includeUsage) {
      // The usage chunk has no choices; cut the shared head before its choices array.
      const base = this.head.slice(0, this.head.length - '[{"index":0,'.length)
      out += `${base}[],"usage":${this.usage()}}\n\n`
    }
    out += 'data: [DONE]\n\n'
    this.res.end(out)
  }

  private finishPlain(reason: FinishReason): void {
    const text = this.spec.pieces ? this.spec.pieces.join('') : generateText(this.spec.seed, this.emitted)
    const choice =
      this.spec.kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: reason }
        : { index: 0, text, logprobs: null, finish_reason: reason }
    const body =
      `{"id":"${this.id}","object":"${this.spec.kind === 'chat' ? 'chat.completion' : 'text_completion'}",` +
      `"created":${this.created},"model":${JSON.stringify(this.model)},"system_fingerprint":"${FINGERPRINT}",` +
      `"choices":[${JSON.stringify(choice)}],"usage":${this.usage()}}`
    this.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    this.res.end(body)
  }
}
