/**
 * /meshd/slots/1, version 1: the long-lived stream an entry node keeps to a
 * member while requests for that member's models wait at the entry. The
 * entry sends WANT (how many wait for a model, how long the oldest have
 * waited); the member sends OFFER when it holds a free slot for the entry;
 * the entry answers an offer it cannot use with DECLINE, and takes one by
 * sending a request over /meshd/infer/1 that names it. Frames as in
 * mesh/infer/frames.ts, payloads JSON, validated on receipt.
 */
import { z } from 'zod'
import { loadReportSchema } from '../infer/schemas.ts'

export const SLOTS_PROTOCOL = '/meshd/slots/1'
export const SLOTS_VERSION = 1

export const SLOT_FRAME = {
  WANT: 1,
  OFFER: 2,
  DECLINE: 3
} as const

/** Waiter ages carried in one want; the rest are ranked by the last. */
export const MAX_WANT_HEADS = 16

export const wantSchema = z.object({
  v: z.literal(SLOTS_VERSION),
  model: z.string().min(1).max(256),
  waiting: z.number().int().nonnegative().max(1_000_000),
  /** How long the oldest waiters have waited, ms, oldest first. */
  heads_ms: z.array(z.number().nonnegative().max(1e9)).max(MAX_WANT_HEADS),
  /** The last offer seq the entry had handled when it counted `waiting`. */
  seen: z.number().int().nonnegative()
})

export const offerSchema = z.object({
  v: z.literal(SLOTS_VERSION),
  id: z.string().min(1).max(64),
  model: z.string().min(1).max(256),
  seq: z.number().int().positive(),
  ttl_ms: z.number().int().positive().max(600_000),
  load: loadReportSchema.optional()
})

export const declineSchema = z.object({
  v: z.literal(SLOTS_VERSION),
  id: z.string().min(1).max(64)
})

export type WantMessage = z.output<typeof wantSchema>
export type OfferMessage = z.output<typeof offerSchema>
