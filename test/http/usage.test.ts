/**
 * Token counts found in the tail of an answer (daemon/http/usage.ts): in a
 * plain JSON answer, in a stream's final chunk, split over network chunks,
 * not in `"usage":null`, nor in generated text that spells the key.
 */
import t from 'tap'
import fc from 'fast-check'
import { BodyTail, findUsage, TAIL_BYTES } from '../../daemon/http/usage.ts'

const b = (s: string): Buffer => Buffer.from(s)
const tailOf = (chunks: string[]): BodyTail => {
  const tail = new BodyTail()
  for (const c of chunks) tail.keep(b(c))
  return tail
}
const sse = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`

t.test('a plain answer', async (t) => {
  t.same(findUsage(b('{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}')),
    { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 })
  t.same(findUsage(b('{"usage": {"prompt_tokens": 5, "total_tokens": 5, "prompt_tokens_details": {"cached_tokens": 0}}, "object":"list"}')),
    { prompt_tokens: 5, total_tokens: 5 }, 'embeddings: no completion tokens; a nested object and blanks')
  t.equal(findUsage(b('{"choices":[]}')), null, 'none reported')
  t.equal(findUsage(b('{"usage":{"prompt_tokens":-1}}')), null, 'nonsense is not a count')
  t.equal(findUsage(b('{"usage":{"prompt_tokens":5,')), null, 'cut off')
})

t.test('a stream: the final chunk wins, null chunks carry none', async (t) => {
  const chunks = [
    sse({ choices: [{ delta: { content: 'a "usage": {"prompt_tokens": 99}' } }], usage: null }),
    sse({ choices: [{ delta: { content: 'b' } }], usage: null }),
    sse({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }),
    'data: [DONE]\n\n'
  ]
  t.same(tailOf(chunks).usage(), { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })
  t.equal(tailOf(chunks.filter((_, i) => i !== 2)).usage(), null, 'without include_usage: none (the key inside content is escaped)')
  t.equal(new BodyTail().usage(), null, 'no body')
})

t.test('split anywhere over network chunks, after many earlier chunks', async (t) => {
  const body = Array.from({ length: 50 }, (_, i) => sse({ choices: [{ delta: { content: `t${i}` } }], usage: null })).join('') +
    sse({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 50, total_tokens: 61 } }) + 'data: [DONE]\n\n'
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 6 }), (cuts) => {
    const at = [0, ...new Set(cuts)].sort((x, y) => x - y)
    // The usage event is split over at most 6 pieces, well within the kept chunks.
    const parts = at.map((start, i) => body.slice(start, at[i + 1] ?? body.length))
    const u = tailOf(parts).usage()
    return u !== null && u.prompt_tokens === 11 && u.completion_tokens === 50
  }))
})

t.test('only the last TAIL_BYTES are searched', async (t) => {
  const tail = tailOf(['{"usage":{"prompt_tokens":1}}', 'x'.repeat(TAIL_BYTES)])
  t.equal(tail.bytes().length, TAIL_BYTES)
  t.equal(tail.usage(), null)
})
