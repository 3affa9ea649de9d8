/**
 * The hot path of one request at its entry node, from a parsed request to a
 * member's answer head: choose a member (router.ts), or wait for a slot
 * offer when none has room; send; on a refusal from a full member try
 * another or wait; on a failure before the answer's first byte try the
 * next-best member (at most MAX_ATTEMPTS in all). What happens after the
 * head (streaming the body to the client) is the front door's (http/api.ts).
 *
 * Never throws: every way a request can end before an answer is an outcome
 * the front door turns into an OpenAI error.
 */
import { MEMBER_BUSY, UpstreamError, type UpstreamRequest, type UpstreamResponse } from '../../mesh/infer/upstream.ts'
import type { Router, Route } from './router.ts'

/** Members tried for a request that failed it; after them the error goes to the client. */
export const MAX_ATTEMPTS = 3
/** Members that refused a request as full before it waits for an offer instead. */
export const MAX_REFUSALS = 4

export type ForwardOutcome =
  | { kind: 'answered', up: UpstreamResponse }
  /** The client went away; nothing is owed to it. */
  | { kind: 'gone' }
  /** Members serve the model, none is ready (503). */
  | { kind: 'no_ready_replica' }
  /** No member serves the model (404). */
  | { kind: 'unknown_model' }
  /** It waited the whole queue timeout, or the queue is full (429). */
  | { kind: 'saturated' }
  /** Every member tried failed before answering (502, 504 past the deadline). */
  | { kind: 'failed', error: UpstreamError }

export interface ForwardOptions {
  queueTimeoutMs: number
  /** Aborts when the client goes away. */
  signal: AbortSignal
  /** A retry on another member, or a refusal by a full one, and why. */
  onRetry: (reason: string) => void
  log: { debug: (o: object, msg: string) => void }
}

export async function forward (router: Router, req: UpstreamRequest, o: ForwardOptions): Promise<ForwardOutcome> {
  const model = req.model
  // Members that failed this request (not tried again), and members that
  // refused it as full (not sent it again unasked; an offer from them is welcome).
  const failed = new Set<string>()
  const full = new Set<string>()
  let failures = 0
  let refusals = 0
  let queueDeadline: number | null = null
  let lastError: UpstreamError | null = null
  for (;;) {
    if (o.signal.aborted) return { kind: 'gone' }
    let route: Route | null = refusals < MAX_REFUSALS ? router.choose(model, full.size === 0 ? failed : new Set([...failed, ...full])) : null
    if (route === null) {
      if (router.availability(model, failed) === 'no_member') {
        if (lastError !== null) break
        return { kind: router.knowsModel(model) ? 'no_ready_replica' : 'unknown_model' }
      }
      // One queue timeout in all, however often a lapsed offer sends it back.
      queueDeadline ??= Date.now() + Math.min(o.queueTimeoutMs, req.deadline - Date.now())
      route = await router.wait(model, queueDeadline - Date.now(), o.signal, failed)
      if (o.signal.aborted) {
        if (route !== null) router.release(route)
        return { kind: 'gone' }
      }
      if (route === null) return { kind: 'saturated' }
    }
    let up: UpstreamResponse
    try {
      up = await router.dispatch(route, req)
    } catch (err) {
      const e = err instanceof UpstreamError ? err : new UpstreamError('internal_error', (err as Error).message, false)
      if (e.code === MEMBER_BUSY) {
        // Not a failure: the member is full (our view of it was stale). Try another or wait.
        full.add(route.id)
        refusals++
        o.onRetry(e.code)
        continue
      }
      lastError = e
      failed.add(route.id)
      if (e.retryable && ++failures < MAX_ATTEMPTS) {
        o.onRetry(e.code)
        o.log.debug({ member: route.id, code: e.code, err: e.message }, 'retrying on another member')
        continue
      }
      break
    }
    if (o.signal.aborted) { up.abort(); return { kind: 'gone' } }
    // A replica that refuses (overloaded, starting, draining) has done nothing: try another.
    if ((up.status === 502 || up.status === 503) && ++failures < MAX_ATTEMPTS) {
      up.abort(new Error(`member answered ${up.status}`))
      failed.add(route.id)
      lastError = new UpstreamError(`upstream_${up.status}`, `member ${route.id} answered ${up.status}`, true)
      o.onRetry(`status_${up.status}`)
      continue
    }
    return { kind: 'answered', up }
  }
  return { kind: 'failed', error: lastError ?? new UpstreamError('no_member', 'no member could serve the request', false) }
}
