/**
 * What the front door needs to know of a request body, found without letting
 * a hostile body cost the process: the nesting pre-scan, the parse, and the
 * few fields it checks (model, the route's required field, stream,
 * max_tokens). Pure: the same function runs on the main thread for small
 * bodies and in the parse worker (parse-worker.ts) for large ones.
 *
 * Why a pre-scan: V8 parses `[[[[...` of depth 5·10⁶ (10 MB) in about 0.5 s
 * when unclosed and 1.4 s when closed (measured, Node 24), and the front door
 * used to stall for seconds on one such body. OpenAI bodies are shallow (a
 * tool's JSON schema is a few levels), so anything nested deeper than
 * MAX_DEPTH is refused in one linear pass over the bytes, before any parse.
 */

/** Deepest nesting of arrays and objects a body may have. */
export const MAX_DEPTH = 128

/** The body fields each inference route requires, and what they must be. */
export const ROUTES: Record<string, { required: string, check: (v: unknown) => boolean, expect: string }> = {
  '/v1/chat/completions': { required: 'messages', check: (v) => Array.isArray(v) && v.length > 0, expect: 'a non-empty array of messages' },
  '/v1/completions': { required: 'prompt', check: (v) => typeof v === 'string' || Array.isArray(v), expect: 'a string or an array' },
  '/v1/embeddings': { required: 'input', check: (v) => typeof v === 'string' || Array.isArray(v), expect: 'a string or an array' }
}

/** A 400 for the body; `code` and `param` as in the OpenAI error object. */
export interface BodyProblem { code: string, message: string, param?: string, reason: string }

/** The fields the front door acts on; the body itself is forwarded as it came. */
export interface BodyFacts {
  model: string
  stream: boolean
  /** `max_completion_tokens` or `max_tokens` when the body gives one (the former wins, as at OpenAI). */
  maxTokens?: { param: 'max_tokens' | 'max_completion_tokens', value: number }
}

export type BodyCheck = { facts: BodyFacts } | { problem: BodyProblem }

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d

/**
 * The deepest nesting in `bytes`, brackets inside strings not counted, or -1
 * as soon as it passes `limit` (the scan stops there). One pass of a plain
 * byte loop (about 1 ns a byte; faster on bodies of a few KiB than skipping
 * strings with indexOf, whose call costs more than the short strings it
 * skips). Not a validator: JSON.parse finds every other error afterwards.
 */
export function nestingDepth (bytes: Uint8Array, limit: number): number {
  let depth = 0
  let deepest = 0
  let inString = false
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!
    if (inString) {
      if (b === BACKSLASH) i++
      else if (b === QUOTE) inString = false
    } else if (b === QUOTE) {
      inString = true
    } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > deepest) {
        deepest = depth
        if (deepest > limit) return -1
      }
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      depth--
    }
  }
  return deepest
}

/** Checks a request body for `path` (one of ROUTES): nesting, JSON, and the fields the front door acts on. */
export function checkBody (bytes: Uint8Array, path: string): BodyCheck {
  if (nestingDepth(bytes, MAX_DEPTH) < 0) {
    return { problem: { reason: 'too_deep', code: 'invalid_json', message: `the body is nested more than ${MAX_DEPTH} levels deep` } }
  }
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch (err) {
    return { problem: { reason: 'bad_json', code: 'invalid_json', message: `the body is not valid JSON: ${(err as Error).message.slice(0, 200)}` } }
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { problem: { reason: 'bad_request', code: 'invalid_request', message: 'the body must be a JSON object' } }
  }
  const fields = doc as Record<string, unknown>
  if (typeof fields.model !== 'string' || fields.model === '') {
    return { problem: { reason: 'bad_request', code: 'missing_model', param: 'model', message: 'you must provide a model parameter' } }
  }
  const route = ROUTES[path]
  if (route !== undefined && !route.check(fields[route.required])) {
    return { problem: { reason: 'bad_request', code: 'invalid_request', param: route.required, message: `\`${route.required}\` must be ${route.expect}` } }
  }
  if (fields.stream !== undefined && fields.stream !== null && typeof fields.stream !== 'boolean') {
    return { problem: { reason: 'bad_request', code: 'invalid_request', param: 'stream', message: '`stream` must be a boolean' } }
  }
  const facts: BodyFacts = { model: fields.model, stream: fields.stream === true }
  for (const param of ['max_completion_tokens', 'max_tokens'] as const) {
    const v = fields[param]
    if (v === undefined || v === null) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      return { problem: { reason: 'bad_request', code: 'invalid_request', param, message: `\`${param}\` must be a positive integer` } }
    }
    facts.maxTokens ??= { param, value: v }
  }
  return { facts }
}
