/**
 * Ledger entries: what the leader records in the Raft log, version 1.
 *
 * Entries come off the network (a peer's log), so every one is parsed before
 * it is applied. Objects are not strict: a newer leader may add fields and an
 * older node keeps applying (it drops what it does not know). A change of
 * meaning is a new `v`; a node that cannot parse a committed entry must stop
 * applying rather than skip it, or its ledger would diverge from its peers'.
 *
 * Every entry carries the term of the leader that wrote it and `at`, the
 * leader's clock when it was written.
 */
import { z } from 'zod'

export const LEDGER_VERSION = 1

const count = z.number().int().nonnegative()
const money = z.number().nonnegative()
/** Longest reason or line an entry may carry. */
export const MAX_TEXT = 2000
const text = z.string().max(MAX_TEXT)
/**
 * Keys and ids name things in several systems (EC2 ClientToken: 64 ASCII
 * characters). Starting with a letter or digit also keeps them clear of
 * `__proto__` and friends; lookups still go through Object.hasOwn.
 */
export const keyPattern = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/
/** Request ids (chosen by the CLI) follow the same rule. */
export const requestIdPattern = keyPattern

const key = z.string().regex(keyPattern, 'expected a key of letters, digits and ._:/@- (at most 128)')
const id = z.string().min(1).max(256)

export const offeringSchema = z.object({
  provider: z.string().min(1).max(128),
  kind: z.enum(['local', 'ssh', 'aws', 'k8s', 'fake']),
  region: z.string().min(1).max(128),
  zone: z.string().min(1).max(128).optional(),
  instanceType: z.string().min(1).max(128).optional(),
  spot: z.boolean(),
  pricePerHour: money,
  available: z.boolean(),
  capacity: count.optional()
})

/** A provider's Instance, as reconciliation may trust it (list() output is checked, not assumed). */
export const instanceSchema = z.object({
  id,
  key: z.string().min(1).max(256),
  provider: z.string().min(1).max(128),
  region: z.string().min(1).max(128),
  zone: z.string().min(1).max(128).optional(),
  spot: z.boolean(),
  instanceType: z.string().min(1).max(128).optional(),
  state: z.enum(['pending', 'running', 'stopping', 'terminated']),
  launchedAt: count,
  pricePerHour: money,
  address: z.string().max(256).optional()
})

export const answerSchema = z.object({
  id: key,
  requested: count,
  granted: count,
  decision: z.enum(['granted', 'cut', 'refused']),
  reason: text,
  provider: z.string().max(1000).nullable(),
  instances: z.array(key).max(10_000)
})

const recordStates = ['provisioning', 'starting', 'ready', 'draining', 'terminating', 'terminated', 'failed'] as const
export type RecordState = typeof recordStates[number]

const common = {
  v: z.literal(LEDGER_VERSION),
  term: count,
  at: count
}

/** A decision: a manual request answered, or one tick of the leader's own work. */
export const decisionEntry = z.object({
  ...common,
  type: z.literal('decision'),
  /** `d<term>-<seq>`; instance keys derive from it. */
  id: key,
  seq: count,
  kind: z.enum(['burst', 'terminate', 'tick']),
  requestId: key.nullable(),
  answer: answerSchema.nullable(),
  reason: text,
  /** The one human-readable line the leader logs for it. */
  line: text
})

/** A launch decided: counted by the budget from this moment, before any provider call. */
export const intentEntry = z.object({
  ...common,
  type: z.literal('instance.intent'),
  key,
  decisionId: key,
  offering: offeringSchema,
  /** The price the budget reserves for it (the launcher's fallbacks never cost more). */
  pricePerHour: money,
  /** Placed on on-demand because spot could not be had (dynamic_ondemand_fallback). */
  fallback: z.boolean(),
  /** The instance this launch replaces once ready: an on-demand fallback (back to spot), or one its provider warned about (instance.notice). */
  replaces: key.optional(),
  reason: text
})

/** The provider made it: key → instance id. */
export const launchedEntry = z.object({
  ...common,
  type: z.literal('instance.launched'),
  key,
  id,
  launchedAt: count,
  pricePerHour: money,
  /** The offering actually used, when the launcher fell back to another one. */
  offering: offeringSchema.optional(),
  /** Offering ids that answered InsufficientCapacity first (skipped for a while). */
  refused: z.array(z.string().max(600)).max(100).optional(),
  address: z.string().max(256).optional(),
  reason: text
})

export const stateEntry = z.object({
  ...common,
  type: z.literal('instance.state'),
  key,
  state: z.enum(['ready', 'draining', 'terminating', 'terminated', 'failed']),
  reason: text,
  /** With `draining`: when to terminate even if it is still busy. */
  drainDeadline: count.optional(),
  /** With `failed`: what the provider said. */
  error: z.object({
    code: z.string().max(64),
    /** Offering ids that answered InsufficientCapacity. */
    refused: z.array(z.string().max(600)).max(100).default([])
  }).optional()
}).refine((e) => e.state !== 'draining' || e.drainDeadline !== undefined, { message: 'a draining entry needs drainDeadline' })

/** The instance's price changed (spot market); the budget and spend follow from `at`. */
export const priceEntry = z.object({
  ...common,
  type: z.literal('instance.price'),
  key,
  pricePerHour: money
})

/** Found in a provider's list() with this cluster's tag, unknown to the ledger. */
export const adoptedEntry = z.object({
  ...common,
  type: z.literal('instance.adopted'),
  key,
  id,
  offering: offeringSchema,
  pricePerHour: money,
  launchedAt: count,
  reason: text
})

/** In the ledger, no longer in its provider's list(): gone (spot reclaimed, deleted by hand, terminated). */
export const vanishedEntry = z.object({
  ...common,
  type: z.literal('instance.vanished'),
  key,
  reason: text
})

/**
 * The instance's provider warned that it will be taken away (its member's
 * heartbeat `notice`): a spot interruption (`at` = when it goes) or a
 * rebalance recommendation (`at` = when EC2 noticed the risk). Recorded once
 * per kind (an interruption may follow a rebalance), so every leader knows
 * which offerings were preempted and which instance a replacement is for.
 */
export const noticeEntry = z.object({
  ...common,
  type: z.literal('instance.notice'),
  key,
  kind: z.enum(['rebalance', 'interruption']),
  noticeAt: count,
  /** Whether it calls for a replacement: it was serving (not already on its way out for another reason). */
  replace: z.boolean(),
  reason: text
})

/**
 * Forget finished instances and decisions older than `before` (clipped to the
 * start of the UTC month of `at`, so this month's spend stays exact); their
 * spend is kept in a running total.
 */
export const compactEntry = z.object({
  ...common,
  type: z.literal('ledger.compact'),
  before: count
})

export const entrySchema = z.discriminatedUnion('type', [decisionEntry, intentEntry, launchedEntry, stateEntry, priceEntry, adoptedEntry, vanishedEntry, noticeEntry, compactEntry])

export type LedgerEntry = z.output<typeof entrySchema>
export type DecisionEntry = z.output<typeof decisionEntry>
export type IntentEntry = z.output<typeof intentEntry>
export type LaunchedEntry = z.output<typeof launchedEntry>
export type StateEntry = z.output<typeof stateEntry>
export type PriceEntry = z.output<typeof priceEntry>
export type AdoptedEntry = z.output<typeof adoptedEntry>
export type VanishedEntry = z.output<typeof vanishedEntry>
export type NoticeEntry = z.output<typeof noticeEntry>
export type CompactEntry = z.output<typeof compactEntry>
/** An answer as the ledger records it (plan/types.ts `Answer` is the same shape). */
export type RecordedAnswer = z.output<typeof answerSchema>

export type ParsedEntry = { ok: true, entry: LedgerEntry } | { ok: false, error: string }

/** Validates an entry that came off the network (or out of storage). */
export function parseEntry (input: unknown): ParsedEntry {
  const r = entrySchema.safeParse(input)
  if (r.success) return { ok: true, entry: r.data }
  const first = r.error.issues[0]
  const where = first === undefined || first.path.length === 0 ? '' : `${first.path.join('.')}: `
  return { ok: false, error: `invalid ledger entry: ${where}${first?.message ?? 'unknown'}` }
}
