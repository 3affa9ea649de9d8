/** The request id (daemon/http/request-id.ts): the client's when sane, else a fresh one that fits the mesh's head. */
import t from 'tap'
import { requestIdOf, newRequestId } from '../../daemon/http/request-id.ts'
import { MAX_REQUEST_ID_CHARS, requestHeadSchema } from '../../mesh/infer/schemas.ts'

t.test('kept, replaced, made', async (t) => {
  for (const id of ['0f8fad5b-d9cb-469f-a165-70867728950e', '01ARZ3NDEKTSV4RRFFQ69G5FAV', 'svc:trace/123+abc=', 'a', 'x'.repeat(MAX_REQUEST_ID_CHARS)]) {
    t.equal(requestIdOf(id), id, `kept: ${id.slice(0, 40)}`)
  }
  for (const bad of [undefined, '', 'x'.repeat(MAX_REQUEST_ID_CHARS + 1), 'two words', 'a, b', 'quote"', 'ünïcode', 'new\nline', ['a', 'b']]) {
    const id = requestIdOf(bad)
    t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `replaced: ${JSON.stringify(bad)?.slice(0, 40)}`)
  }
  t.not(newRequestId(), newRequestId(), 'fresh each time')
})

t.test('every id kept or made fits the mesh request head', async (t) => {
  for (const id of [requestIdOf('x'.repeat(MAX_REQUEST_ID_CHARS)), newRequestId()]) {
    t.ok(requestHeadSchema.safeParse({ v: 1, id, method: 'POST', path: '/v1/chat/completions', headers: [], model: 'm', deadline_ms: 1 }).success)
  }
})
