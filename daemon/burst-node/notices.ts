/**
 * What an EC2 burst node learns from its instance metadata about being taken
 * away, as pure functions (the polling itself is notice-poller.ts):
 *
 * - `spot/instance-action`: 404 until EC2 decides to reclaim the spot
 *   instance, then `{"action": "terminate"|"stop"|"hibernate", "time": ISO}`,
 *   about two minutes ahead. The node drains at once and is gone by `time`.
 * - `events/recommendations/rebalance`: 404 until EC2 sees the instance at
 *   elevated risk, then `{"noticeTime": ISO}`. The node keeps serving; the
 *   leader starts a replacement.
 *
 * A notice, once seen, stays: EC2 does not take an interruption back, and a
 * node that began draining does not undo it. An interruption outranks a
 * rebalance recommendation in the heartbeat (there is one `notice` field).
 */

export type NoticeKind = 'rebalance' | 'interruption'

/** What the heartbeat carries (mesh/schemas/heartbeat.ts `notice`). */
export interface Notice {
  kind: NoticeKind
  /** Interruption: when the instance goes (epoch ms). Rebalance: when EC2 noticed the risk. */
  at: number
}

/** One metadata read: 404 (nothing), a body, or a failure (IMDS down, timeout, 401 ...). */
export type Reading =
  | { status: 'none' }
  | { status: 'body', body: string }
  | { status: 'error', error: string }

export interface NoticeState {
  interruption: { action: string, at: number } | null
  rebalance: { at: number } | null
  /** The failure last reported while IMDS does not answer; null while it does. */
  failing: string | null
}

export type NoticeEvent =
  | { type: 'interruption', action: string, at: number }
  | { type: 'rebalance', at: number }
  /** IMDS stopped answering (reported once until it answers again). */
  | { type: 'unreachable', error: string }
  | { type: 'reachable' }

export function initialNotices (): NoticeState {
  return { interruption: null, rebalance: null, failing: null }
}

type Parsed<T> = { ok: true, value: T } | { ok: false, error: string }

function json (body: string, what: string): Parsed<Record<string, unknown>> {
  try {
    const v: unknown = JSON.parse(body)
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { ok: true, value: v as Record<string, unknown> }
  } catch { /* reported below */ }
  return { ok: false, error: `${what}: expected a JSON object, got ${JSON.stringify(body.slice(0, 80))}` }
}

function time (v: unknown, what: string): Parsed<number> {
  const ms = typeof v === 'string' ? Date.parse(v) : NaN
  return Number.isFinite(ms) && ms >= 0 ? { ok: true, value: ms } : { ok: false, error: `${what}: expected an ISO 8601 time, got ${JSON.stringify(v)}` }
}

/** `spot/instance-action`: `{"action":"terminate","time":"2026-11-26T21:00:00Z"}`. */
export function parseInstanceAction (body: string): Parsed<{ action: string, at: number }> {
  const o = json(body, 'spot/instance-action')
  if (!o.ok) return o
  const at = time(o.value.time, 'spot/instance-action time')
  if (!at.ok) return at
  const action = typeof o.value.action === 'string' && o.value.action.length > 0 && o.value.action.length <= 32 ? o.value.action : 'terminate'
  return { ok: true, value: { action, at: at.value } }
}

/** `events/recommendations/rebalance`: `{"noticeTime":"2026-11-26T20:58:00Z"}`. */
export function parseRebalance (body: string): Parsed<{ at: number }> {
  const o = json(body, 'events/recommendations/rebalance')
  if (!o.ok) return o
  const at = time(o.value.noticeTime, 'events/recommendations/rebalance noticeTime')
  return at.ok ? { ok: true, value: { at: at.value } } : at
}

/**
 * Folds one poll (both paths) into the state: the events are what is new
 * (each notice once, a changed interruption time again, IMDS going away and
 * coming back once each).
 */
export function observe (state: NoticeState, poll: { action: Reading, rebalance: Reading }): { state: NoticeState, events: NoticeEvent[] } {
  const next: NoticeState = { ...state }
  const events: NoticeEvent[] = []
  const errors: string[] = []

  const a = poll.action
  if (a.status === 'error') errors.push(`spot/instance-action: ${a.error}`)
  else if (a.status === 'body') {
    const p = parseInstanceAction(a.body)
    if (!p.ok) errors.push(p.error)
    else if (state.interruption === null || state.interruption.at !== p.value.at || state.interruption.action !== p.value.action) {
      next.interruption = p.value
      events.push({ type: 'interruption', ...p.value })
    }
  }

  const r = poll.rebalance
  if (r.status === 'error') errors.push(`events/recommendations/rebalance: ${r.error}`)
  else if (r.status === 'body' && state.rebalance === null) {
    const p = parseRebalance(r.body)
    if (!p.ok) errors.push(p.error)
    else {
      next.rebalance = p.value
      events.push({ type: 'rebalance', at: p.value.at })
    }
  }

  if (errors.length > 0) {
    if (state.failing === null) events.push({ type: 'unreachable', error: errors.join('; ') })
    next.failing = errors.join('; ')
  } else if (state.failing !== null) {
    next.failing = null
    events.push({ type: 'reachable' })
  }
  return { state: next, events }
}

/** The notice the heartbeat carries: an interruption over a rebalance recommendation; null when there is none. */
export function currentNotice (state: NoticeState): Notice | null {
  if (state.interruption !== null) return { kind: 'interruption', at: state.interruption.at }
  if (state.rebalance !== null) return { kind: 'rebalance', at: state.rebalance.at }
  return null
}

/**
 * Before its termination time a node stops: requests still in flight are cut
 * this long before EC2 takes the instance, so the node can say it left (and
 * clients get an error event rather than a dead connection).
 */
export const INTERRUPTION_MARGIN_MS = 5_000

/**
 * How long a draining node lets requests in flight run: `drain_timeout`
 * normally; under an interruption notice, until the termination time less the
 * margin, whether that is longer or shorter than drain_timeout (the notice is
 * what bounds it, not the config).
 */
export function drainBudgetMs (now: number, drainTimeoutMs: number, interruptionAt: number | null, marginMs = INTERRUPTION_MARGIN_MS): number {
  if (interruptionAt === null) return drainTimeoutMs
  return Math.max(0, interruptionAt - marginMs - now)
}
