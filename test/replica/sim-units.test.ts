// Properties of the simulator's pure parts: filler text, stop handling,
// embedding vectors, the due-time heap and CLI parsing.

import t from 'tap'
import fc from 'fast-check'
import { DueHeap } from '../../daemon/replica/sim/due-heap.ts'
import { parseCli, UsageError, DEFAULT_OPTIONS } from '../../daemon/replica/sim/options.ts'
import { embedVector, estimateTokens, generatePieces, generateText, hashText, piecesUntilStop } from '../../daemon/replica/sim/text.ts'

t.test('filler text is deterministic, one word per token', (t) => {
  fc.assert(
    fc.property(fc.string(), fc.integer({ min: 1, max: 200 }), (prompt, n) => {
      const seed = hashText(prompt)
      const pieces = generatePieces(seed, n)
      return (
        pieces.length === n &&
        !pieces[0]?.startsWith(' ') &&
        pieces.slice(1).every((p) => p.startsWith(' ') && p.length > 1) &&
        generateText(seed, n) === pieces.join('') &&
        generateText(seed, n + 5).startsWith(pieces.join(''))
      )
    }),
  )
  t.not(generateText(hashText('a'), 20), generateText(hashText('b'), 20))
  t.end()
})

t.test('stop sequences truncate exactly where OpenAI would', (t) => {
  fc.assert(
    fc.property(fc.string(), fc.integer({ min: 1, max: 60 }), fc.nat(), fc.integer({ min: 1, max: 12 }), (prompt, n, from, len) => {
      const seed = hashText(prompt)
      const full = generateText(seed, n)
      // A stop taken from the text itself (possibly spanning pieces) must cut at its first occurrence.
      const start = from % full.length
      const stop = full.slice(start, start + len)
      const cut = piecesUntilStop(seed, n, [stop])
      return cut !== null && cut.join('') === full.slice(0, full.indexOf(stop))
    }),
  )
  t.equal(piecesUntilStop(hashText('x'), 10, ['definitely absent']), null)
  t.equal(piecesUntilStop(hashText('x'), 10, ['']), null, 'empty stops are ignored')
  t.end()
})

/** What OpenAI does, spelled out: the first piece in which any stop completes, cut at the earliest stop completing there. */
function stopOracle (pieces: string[], stops: string[]): string | null {
  const full = pieces.join('')
  const ends: number[] = []
  let at = 0
  for (const p of pieces) { at += p.length; ends.push(at) }
  const pieceOf = (end: number): number => ends.findIndex((e) => e >= end)
  let best: { piece: number, cut: number } | null = null
  for (const s of stops) {
    if (s === '') continue
    const a = full.indexOf(s)
    if (a === -1) continue
    const piece = pieceOf(a + s.length)
    if (best === null || piece < best.piece || (piece === best.piece && a < best.cut)) best = { piece, cut: a }
  }
  return best === null ? null : full.slice(0, best.cut)
}

t.test('stop sequences over long outputs, several at once: as the oracle says', (t) => {
  fc.assert(
    fc.property(
      fc.string(), fc.integer({ min: 1, max: 3000 }),
      fc.array(fc.record({ from: fc.nat(), len: fc.integer({ min: 1, max: 200 }), absent: fc.boolean() }), { minLength: 1, maxLength: 4 }),
      (prompt, n, specs) => {
        const seed = hashText(prompt)
        const pieces = generatePieces(seed, n)
        const full = pieces.join('')
        // Stops from the text (spanning pieces, long ones too) and ones that never occur.
        const stops = specs.map(({ from, len, absent }) => absent ? `\u0000${len}` : full.slice(from % full.length, (from % full.length) + len))
        const got = piecesUntilStop(seed, n, stops)
        return (got === null ? null : got.join('')) === stopOracle(pieces, stops)
      }),
    { numRuns: 300 }
  )
  t.end()
})

t.test('a stop that never occurs in a very long completion is searched in linear time (it held the event loop for minutes)', (t) => {
  // max_tokens 10^6: the quadratic search did not finish within the test timeout; the linear one takes well under a second.
  t.equal(piecesUntilStop(hashText('long'), 1_000_000, ['never occurs', 'x y z']), null)
  t.end()
})

t.test('embedding vectors are deterministic unit vectors', (t) => {
  fc.assert(
    fc.property(fc.string(), fc.integer({ min: 1, max: 256 }), (text, dim) => {
      const v = embedVector(text, dim)
      const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0))
      return v.length === dim && Math.abs(norm - 1) < 1e-5 && embedVector(text, dim).every((x, i) => x === v[i])
    }),
  )
  t.end()
})

t.test('token estimate is ~4 chars per token, at least 1', (t) => {
  t.equal(estimateTokens(0), 1)
  t.equal(estimateTokens(1), 1)
  t.equal(estimateTokens(16), 4)
  t.equal(estimateTokens(17), 5)
  t.end()
})

t.test('DueHeap pops in due order, also after removals', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.boolean())), (entries) => {
      const heap = new DueHeap<{ due: number; heapIndex: number }>()
      const items = entries.map(([due]) => ({ due, heapIndex: -1 }))
      for (const item of items) heap.push(item)
      const kept = items.filter((_, i) => !entries[i]?.[1])
      items.forEach((item, i) => entries[i]?.[1] && heap.remove(item))
      const popped: number[] = []
      for (let it = heap.pop(); it; it = heap.pop()) popped.push(it.due)
      const expected = kept.map((k) => k.due).sort((a, b) => a - b)
      return heap.size === 0 && popped.length === expected.length && popped.every((d, i) => d === expected[i]) && items.every((i) => i.heapIndex === -1)
    }),
  )
  t.end()
})

t.test('CLI flags map onto options and are validated', (t) => {
  const { options } = parseCli(['--port', '8080', '--models', 'llama3, other', '--slots', '8', '--ttft-ms', '12.5', '--stall-after-tokens', '3'])
  t.equal(options.port, 8080)
  t.same(options.models, ['llama3', 'other'])
  t.equal(options.slots, 8)
  t.equal(options.ttftMs, 12.5)
  t.equal(options.stallAfterTokens, 3)
  t.equal(options.queueLimit, DEFAULT_OPTIONS.queueLimit)
  t.equal(parseCli([]).options.stallAfterTokens, Infinity, 'stall is off by default')
  for (const bad of [['--slots', '1.5'], ['--port', '-1'], ['--models', ','], ['--fail-rate', '1.1'], ['stray']]) {
    t.throws(() => parseCli(bad), UsageError, bad.join(' '))
  }
  t.end()
})
