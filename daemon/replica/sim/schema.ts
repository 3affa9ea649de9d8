// Request bodies the simulator accepts, version 1 of its wire contract: the
// subset of OpenAI's chat/completions/embeddings requests that change what an
// engine does. Unknown fields (temperature, top_p, user, ...) are accepted and
// ignored, as engines do.

import { z } from 'zod'
import { apiError, type ApiError } from './errors.ts'

export const SIM_SCHEMA_VERSION = 1

const Stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish()

const StreamOptions = z.object({ include_usage: z.boolean().nullish() }).nullish()

const ContentPart = z.object({ type: z.string(), text: z.string().optional() })

const Message = z.object({
  role: z.string(),
  content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
})

const Generation = {
  model: z.string().min(1),
  max_tokens: z.int().positive().nullish(),
  max_completion_tokens: z.int().positive().nullish(),
  stream: z.boolean().nullish(),
  stream_options: StreamOptions,
  n: z.int().nullish(),
  stop: Stop,
}

export const ChatCompletionRequestV1 = z.object({
  ...Generation,
  messages: z.array(Message).min(1),
})
export type ChatCompletionRequestV1 = z.infer<typeof ChatCompletionRequestV1>

const TokenIds = z.array(z.int().nonnegative())

export const CompletionRequestV1 = z.object({
  ...Generation,
  prompt: z.union([z.string(), z.array(z.string()), TokenIds, z.array(TokenIds)]),
})
export type CompletionRequestV1 = z.infer<typeof CompletionRequestV1>

export const EmbeddingRequestV1 = z.object({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()).min(1), TokenIds.min(1), z.array(TokenIds).min(1)]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.int().positive().max(8192).nullish(),
})
export type EmbeddingRequestV1 = z.infer<typeof EmbeddingRequestV1>

/** Validates `body` against `schema`, or returns the OpenAI-style 400 for its first problem. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): { ok: true; value: z.infer<S> } | { ok: false; error: ApiError } {
  const r = schema.safeParse(body)
  if (r.success) return { ok: true, value: r.data }
  const issue = r.error.issues[0]
  if (issue === undefined) return { ok: false, error: apiError(400, 'Invalid request body.', 'invalid_value') }
  const param = issue.path.length > 0 ? issue.path.map(String).join('.') : null
  const missing = issue.code === 'invalid_type' && valueAt(body, issue.path) === undefined
  const message = missing
    ? `Missing required parameter: '${param ?? 'body'}'.`
    : `Invalid value for '${param ?? 'body'}': ${issue.message}`
  return { ok: false, error: apiError(400, message, missing ? 'missing_required_parameter' : 'invalid_value', param) }
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = body
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<PropertyKey, unknown>)[key]
  }
  return v
}
