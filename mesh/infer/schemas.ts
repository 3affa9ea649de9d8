/**
 * The JSON parts of /meshd/infer/1, version 1: request head, response head,
 * trailer and error. Validated on receipt: they come from the network.
 */
import { z } from 'zod'

export const INFER_PROTOCOL = '/meshd/infer/1'
export const INFER_VERSION = 1

const headers = z.array(z.tuple([z.string().max(256), z.string().max(16 * 1024)])).max(128)

export const loadReportSchema = z.object({
  inflight: z.number().int().nonnegative(),
  queued: z.number().int().nonnegative(),
  slots: z.number().int().nonnegative(),
  /** The member's clock when it measured the load (orders reports from one member). */
  at: z.number().nonnegative().optional(),
  /** How fast its replica answers (bytes per ms per request, daemon/proxy/speed.ts); absent until measured. */
  rate: z.number().nonnegative().optional()
})

/** The header that carries the request id to the replica (the entry node's `x-request-id`). */
export const REQUEST_ID_HEADER = 'x-request-id'
export const MAX_REQUEST_ID_CHARS = 128

export const requestHeadSchema = z.object({
  v: z.literal(INFER_VERSION),
  /**
   * The request id: the entry node's `x-request-id` (the client's, or one it
   * made), at most 128 characters. The serving member hands it to its replica
   * as `x-request-id`, also when the entry did not list it among `headers`.
   */
  id: z.string().max(MAX_REQUEST_ID_CHARS),
  method: z.enum(['GET', 'POST']),
  path: z.string().max(2048).regex(/^\/v1\//),
  headers,
  model: z.string().max(256),
  /** Milliseconds left until the entry node's deadline: the far side stops at it too. */
  deadline_ms: z.number().int().positive(),
  /** The slot offer (/meshd/slots/1) this request takes; absent: admitted only into a free slot. */
  offer: z.string().min(1).max(64).optional()
})

export const responseHeadSchema = z.object({
  status: z.number().int().min(100).max(599),
  headers,
  served_by: z.string().max(128),
  load: loadReportSchema.optional()
})

export const trailerSchema = z.object({
  load: loadReportSchema.optional()
})

export const errorSchema = z.object({
  code: z.string().max(64),
  message: z.string().max(4096),
  /** True when nothing reached the replica, so another member may be tried. */
  retryable: z.boolean(),
  /** The member's load when it refused (a full member says how full). */
  load: loadReportSchema.optional()
})

export type RequestHead = z.output<typeof requestHeadSchema>
export type LoadReport = z.output<typeof loadReportSchema>
