/** The access line's fields (daemon/http/access-log.ts accessLine): what applies is there, the rest left out. */
import t from 'tap'
import { accessLine, CLIENT_CLOSED, type Access } from '../../daemon/http/access-log.ts'
import { BodyTail } from '../../daemon/http/usage.ts'

const self = { selfId: 'peer-a', selfName: 'a' }
const names = (id: string): string | undefined => (id === 'peer-b' ? 'b' : undefined)

t.test('served over the mesh, with usage', async (t) => {
  const tail = new BodyTail()
  tail.keep(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\ndata: [DONE]\n\n'))
  const a: Access = { id: 'r1', method: 'POST', path: '/v1/chat/completions', started: 1000, model: 'm', stream: true, servedBy: 'peer-b', firstByte: 1012.34, tail }
  t.same(accessLine(a, { status: 200, finished: true, now: 1100.06 }, self, names), {
    request_id: 'r1', method: 'POST', path: '/v1/chat/completions', status: 200, duration_ms: 100.1, entry: 'a', entry_peer: 'peer-a',
    model: 'm', stream: true, served_by: 'b', served_by_peer: 'peer-b', ttft_ms: 12.3, prompt_tokens: 3, completion_tokens: 4, total_tokens: 7
  })
})

t.test('served here; a member not (or no longer) known has a null name', async (t) => {
  t.match(accessLine({ id: 'r', method: 'POST', path: '/p', started: 0, servedBy: 'peer-a' }, { status: 200, finished: true, now: 1 }, self, names), { served_by: 'a', served_by_peer: 'peer-a' })
  t.match(accessLine({ id: 'r', method: 'POST', path: '/p', started: 0, servedBy: 'peer-x' }, { status: 200, finished: true, now: 1 }, self, names), { served_by: null, served_by_peer: 'peer-x' })
})

t.test('an error, and a client that left before the head', async (t) => {
  const e = accessLine({ id: 'r2', method: 'POST', path: '/v1/embeddings', started: 0, model: 'x', error: 'model_not_found' }, { status: 404, finished: true, now: 2 }, self, names)
  t.match(e, { status: 404, error: 'model_not_found' })
  for (const k of ['served_by', 'ttft_ms', 'prompt_tokens', 'aborted']) t.notOk(k in e, `no ${k}`)
  t.match(accessLine({ id: 'r3', method: 'POST', path: '/v1/completions', started: 0 }, { status: CLIENT_CLOSED, finished: false, now: 5 }, self, names), { status: 499, aborted: true })
})
