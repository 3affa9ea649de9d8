/**
 * The wire form of election messages and its validating parser. The shell
 * sends `toWire(msg)` as JSON and runs everything it receives through
 * `parseMessage` before `step`: the core trusts the shape (and the ordering
 * of entries in an append) but not the content, which is Raft's job.
 *
 * The shell must also check that `from` is the authenticated libp2p peer the
 * message came from; this module cannot know that.
 *
 * Objects are strict: an unknown field is a different protocol version, and
 * a mismatch between nodes of a consensus group should fail loudly rather
 * than be half-understood. Bump ELECTION_SCHEMA_VERSION for any change.
 */
import { z } from 'zod'
import { ELECTION_SCHEMA_VERSION, MAX_ENTRIES_PER_APPEND, MAX_NODE_ID_LENGTH, MAX_VOTERS } from './constants.ts'
import type { Entry, Message } from './types.ts'

export class MessageError extends Error {
  override name = 'MessageError'
  /** Where in the message the first problem is, e.g. `entries.0.term`. */
  readonly path: string

  constructor (path: string, message: string) {
    super(path === '' ? message : `${path}: ${message}`)
    this.path = path
  }
}

const nat = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const pos = nat.min(1)
export const nodeIdSchema = z.string().min(1).max(MAX_NODE_ID_LENGTH)

const voters = z.array(nodeIdSchema).min(1).max(MAX_VOTERS)
  .refine(v => new Set(v).size === v.length, 'duplicate voter')

export const entrySchema = z.discriminatedUnion('kind', [
  z.strictObject({ index: pos, term: pos, kind: z.literal('noop'), data: z.null() }),
  z.strictObject({ index: pos, term: pos, kind: z.literal('config'), data: z.strictObject({ voters }) }),
  // Opaque application data; JSON gives it no undefined, so require presence.
  z.strictObject({ index: pos, term: pos, kind: z.literal('command'), data: z.unknown().refine(d => d !== undefined, 'data is required') })
])

const base = { v: z.literal(ELECTION_SCHEMA_VERSION), from: nodeIdSchema, to: nodeIdSchema, term: nat }

const wireSchema = z.discriminatedUnion('type', [
  z.strictObject({ ...base, type: z.enum(['prevote', 'vote']), lastLogIndex: nat, lastLogTerm: nat }),
  z.strictObject({ ...base, type: z.enum(['prevote_resp', 'vote_resp']), granted: z.boolean() }),
  z.strictObject({
    ...base,
    type: z.literal('append'),
    prevIndex: nat,
    prevTerm: nat,
    entries: z.array(entrySchema).max(MAX_ENTRIES_PER_APPEND),
    commit: nat,
    round: pos
  }),
  z.discriminatedUnion('success', [
    z.strictObject({ ...base, type: z.literal('append_resp'), round: pos, success: z.literal(true), matchIndex: nat }),
    z.strictObject({ ...base, type: z.literal('append_resp'), round: pos, success: z.literal(false), rejectIndex: nat, hintIndex: pos, hintTerm: nat })
  ])
])

export type WireMessage = Message & { v: typeof ELECTION_SCHEMA_VERSION }

/** The object to JSON-encode and send. */
export function toWire (msg: Message): WireMessage {
  return { v: ELECTION_SCHEMA_VERSION, ...msg }
}

/**
 * Validates a decoded JSON value and returns the core Message (without the
 * version field), or throws MessageError. Beyond the schema it checks what
 * the core relies on: an append's entries are consecutive from prevIndex + 1,
 * their terms never decrease, start no lower than prevTerm and are no higher
 * than the message's term.
 */
export function parseMessage (raw: unknown): Message {
  const parsed = wireSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new MessageError(issue === undefined ? '' : issue.path.join('.'), issue?.message ?? 'invalid message')
  }
  const { v: _v, ...msg } = parsed.data
  if (msg.type === 'append') checkEntries(msg.prevIndex, msg.prevTerm, msg.term, msg.entries as Entry[])
  return msg as Message
}

function checkEntries (prevIndex: number, prevTerm: number, term: number, entries: readonly Entry[]): void {
  if (prevTerm > term) throw new MessageError('prevTerm', `prevTerm ${prevTerm} above message term ${term}`)
  if (prevIndex === 0 && prevTerm !== 0) throw new MessageError('prevTerm', 'prevTerm must be 0 at prevIndex 0')
  let lastTerm = prevTerm
  for (const [i, e] of entries.entries()) {
    if (e.index !== prevIndex + 1 + i) throw new MessageError(`entries.${i}.index`, `expected ${prevIndex + 1 + i}, got ${e.index}`)
    if (e.term < lastTerm || e.term > term) throw new MessageError(`entries.${i}.term`, `term ${e.term} out of order (after ${lastTerm}, message term ${term})`)
    lastTerm = e.term
  }
}
