/**
 * The request id every response carries in `x-request-id` and every replica
 * receives: the client's own when it is sane, else one made here. "Sane" is
 * bounded (it travels in the mesh's request head, whose `id` holds at most
 * 128 characters, and into logs) and of a conservative charset (uuids, hex,
 * base64, ULIDs, `svc:trace/123` and the like), as proxies such as Heroku's
 * router do: anything else is replaced rather than refused, so a client
 * sending an odd id is still served.
 */
import { randomUUID } from 'node:crypto'
import { MAX_REQUEST_ID_CHARS, REQUEST_ID_HEADER } from '../../mesh/infer/schemas.ts'

export { REQUEST_ID_HEADER }
const SANE = new RegExp(`^[A-Za-z0-9._~:@/+=-]{1,${MAX_REQUEST_ID_CHARS}}$`)

/**
 * A fresh id: a random UUID (v4, as Envoy's). Node draws it from a cached
 * entropy pool: ~0.1 µs, where `randomBytes(16)` costs ~6–10 µs per request.
 */
export function newRequestId (): string {
  return randomUUID()
}

/** The client's id if it sent exactly one sane one; a fresh one otherwise. */
export function requestIdOf (given: string | string[] | undefined): string {
  return typeof given === 'string' && SANE.test(given) ? given : newRequestId()
}
