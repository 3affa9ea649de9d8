/**
 * The labels of `meshd_http_requests_total`, bounded: a route is one of a
 * fixed set (never the raw path, which a client chooses), and the model is
 * set by the front door only once the mesh knows it (a model no member
 * serves is `other`; a request refused before its body was read has none).
 */
import type { ServerResponse } from 'node:http'

const ROUTES: Record<string, string> = {
  '/v1/chat/completions': 'chat_completions',
  '/v1/completions': 'completions',
  '/v1/embeddings': 'embeddings',
  '/v1/models': 'models',
  '/health': 'health',
  '/metrics': 'metrics'
}

/** Every value the route label takes. */
export const ROUTE_LABELS = [...new Set(Object.values(ROUTES)), 'other'] as const

export function routeLabel (path: string): string {
  if (Object.hasOwn(ROUTES, path)) return ROUTES[path]!
  if (path.startsWith('/v1/models/')) return 'models'
  return 'other'
}

/** What the front door learnt about a request's model, read when the response ends. */
const models = new WeakMap<ServerResponse, string>()

/** The front door names the request's model (a model the mesh serves, or `other`). */
export function labelModel (res: ServerResponse, model: string): void {
  models.set(res, model)
}

export function modelLabel (res: ServerResponse): string {
  return models.get(res) ?? ''
}
