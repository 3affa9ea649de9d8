/**
 * The nesting pre-scan (daemon/http/body-check.ts) against JSON.parse: on any
 * JSON value it finds exactly the depth of the parsed value, brackets and
 * escaped quotes inside strings never count, and a body deeper than the
 * limit is refused before it is parsed. Also the descriptor limit parser.
 */
import t from 'tap'
import fc from 'fast-check'
import { nestingDepth, checkBody, MAX_DEPTH } from '../../daemon/http/body-check.ts'
import { openFileLimit } from '../../daemon/http/descriptors.ts'

function depthOf (v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf))
  if (v !== null && typeof v === 'object') return 1 + Math.max(0, ...Object.values(v).map(depthOf))
  return 0
}

t.test('the scan finds the depth JSON.parse builds, whatever the strings hold', async (t) => {
  const tricky = fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a', 'é', '\u0000') })
  const value = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, tricky, fc.integer(), fc.constant(null), fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(tricky, tie('v'), { maxKeys: 4 }))
  })).v
  fc.assert(fc.property(value, (v) => {
    const bytes = Buffer.from(JSON.stringify(v))
    return nestingDepth(bytes, 1000) === depthOf(v)
  }), { numRuns: 2000 })
  t.pass('2000 random values')
})

t.test('past the limit: -1, and checkBody refuses before parsing', async (t) => {
  t.equal(nestingDepth(Buffer.from('['.repeat(129)), 128), -1)
  t.equal(nestingDepth(Buffer.from('['.repeat(128) + ']'.repeat(128)), 128), 128)
  t.equal(nestingDepth(Buffer.from(`"${'['.repeat(1000)}"`), 128), 0, 'brackets in a string do not count')
  t.equal(nestingDepth(Buffer.from(`["\\\\",${'['.repeat(10)}`), 128), 11, 'an escaped backslash ends before the quote')
  const deep = checkBody(Buffer.from('['.repeat(5_000_000)), '/v1/chat/completions')
  t.ok('problem' in deep && deep.problem.reason === 'too_deep', '5·10⁶ deep: too_deep')
  const ok = checkBody(Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], x: JSON.parse('['.repeat(MAX_DEPTH - 2) + ']'.repeat(MAX_DEPTH - 2)) })), '/v1/chat/completions')
  t.ok('facts' in ok, `depth ${MAX_DEPTH} in all is accepted`)
})

t.test('max_tokens facts', async (t) => {
  const body = (o: object): Buffer => Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], ...o }))
  t.same((checkBody(body({ max_tokens: 7 }), '/v1/chat/completions') as { facts: unknown }).facts, { model: 'm', stream: false, maxTokens: { param: 'max_tokens', value: 7 } })
  t.same((checkBody(body({ max_tokens: 7, max_completion_tokens: 9 }), '/v1/chat/completions') as { facts: { maxTokens: unknown } }).facts.maxTokens, { param: 'max_completion_tokens', value: 9 }, 'max_completion_tokens wins')
  t.same((checkBody(body({ max_tokens: null }), '/v1/chat/completions') as { facts: { maxTokens?: unknown } }).facts.maxTokens, undefined, 'null: none')
  for (const bad of ['7', 1.5, 0, -1]) {
    const r = checkBody(body({ max_tokens: bad }), '/v1/chat/completions')
    t.ok('problem' in r && r.problem.param === 'max_tokens', `max_tokens ${JSON.stringify(bad)}: 400`)
  }
})

t.test('openFileLimit', async (t) => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n'
  t.equal(openFileLimit(limits), 1024)
  t.equal(openFileLimit(limits.replace('1024 ', 'unlimited ')), null)
  t.equal(openFileLimit('nothing'), null)
})
