// Deterministic stand-ins for what a model computes: token estimates, filler
// text and embedding vectors. Everything is a pure function of its input, so
// tests can predict the output and compare a streamed answer with a plain one.

// 64 words: a power of two, so a word is picked with a shift of the PRNG state.
const WORDS = [
  'the', 'mesh', 'routes', 'tokens', 'to', 'a', 'replica', 'that', 'answers', 'quickly',
  'while', 'every', 'node', 'gossips', 'its', 'load', 'and', 'leader', 'bursts', 'capacity',
  'into', 'cloud', 'within', 'budget', 'so', 'requests', 'never', 'wait', 'long', 'for',
  'slots', 'queue', 'stream', 'model', 'prompt', 'context', 'cache', 'latency', 'throughput', 'peer',
  'gateway', 'simulated', 'engine', 'decodes', 'batch', 'of', 'words', 'at', 'steady', 'rate',
  'under', 'pressure', 'with', 'graceful', 'drain', 'on', 'shutdown', 'metrics', 'show', 'how',
  'busy', 'it', 'is', 'now',
] as const

const WORD_SHIFT = 26 // 32 - log2(64)

// JSON-encoded pieces, built once: the streaming hot path concatenates these
// instead of calling JSON.stringify per token.
export const FIRST_PIECE_JSON: readonly string[] = WORDS.map((w) => JSON.stringify(w))
export const NEXT_PIECE_JSON: readonly string[] = WORDS.map((w) => JSON.stringify(' ' + w))

/** 32-bit FNV-1a over UTF-16 code units; never returns 0 (a xorshift seed must not be 0). */
export function hashText(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h === 0 ? 0x9e3779b9 : h
}

/** xorshift32 step: cheap, stateless (the state lives in the caller), good enough for filler. */
export function nextState(state: number): number {
  let x = state
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  return x >>> 0
}

/** Index into the word list for a PRNG state (top bits: xorshift's low bits are weaker). */
export function wordIndex(state: number): number {
  return state >>> WORD_SHIFT
}

/** The text of token `i` given the word it drew: words after the first carry a leading space. */
export function pieceText(i: number, word: number): string {
  const w = WORDS[word] ?? 'the'
  return i === 0 ? w : ' ' + w
}

/** The first `count` pieces generated from `seed`, as the stream would emit them. */
export function generatePieces(seed: number, count: number): string[] {
  const out = new Array<string>(count)
  let state = seed
  for (let i = 0; i < count; i++) {
    state = nextState(state)
    out[i] = pieceText(i, wordIndex(state))
  }
  return out
}

export function generateText(seed: number, count: number): string {
  return generatePieces(seed, count).join('')
}

/**
 * Pieces up to the first stop sequence, truncated before it as OpenAI does.
 * Returns null when no stop sequence occurs within `maxTokens` pieces.
 *
 * Linear in `maxTokens`: only the last (longest stop - 1) characters before
 * a piece can take part in a match that ends inside it, so the search keeps
 * that window and nothing else (searching the whole text so far made one
 * request with max_tokens 10^6 and a stop that never occurs hold the event
 * loop for minutes). Pieces are regenerated from the seed once a stop is
 * found, so a request whose stop never occurs allocates nothing.
 */
export function piecesUntilStop(seed: number, maxTokens: number, stops: readonly string[]): string[] | null {
  const live = stops.filter((s) => s.length > 0)
  if (live.length === 0) return null
  const keep = Math.max(...live.map((s) => s.length)) - 1
  let window = '' // at least the last `keep` characters of the text before this piece
  let windowAt = 0 // offset of `window` in the whole text
  let state = seed
  for (let i = 0; i < maxTokens; i++) {
    state = nextState(state)
    const piece = pieceText(i, wordIndex(state))
    const hay = window + piece
    const start = windowAt + window.length // offset of this piece in the whole text
    let cut = -1
    for (const s of live) {
      // Only a match that ends inside this piece is new; earlier ones were checked already.
      const at = hay.indexOf(s, Math.max(0, window.length - s.length + 1))
      if (at !== -1 && (cut === -1 || windowAt + at < cut)) cut = windowAt + at
    }
    if (cut !== -1) {
      const out = generatePieces(seed, i)
      // A stop spanning earlier pieces cuts into them too.
      if (cut < start) return trimTo(out, cut)
      if (cut > start) out.push(piece.slice(0, cut - start))
      return out
    }
    // Trimmed only when twice as long as needed: each character is copied O(1) times.
    if (hay.length > 2 * keep + 64) {
      windowAt += hay.length - keep
      window = keep === 0 ? '' : hay.slice(hay.length - keep)
    } else {
      window = hay
    }
  }
  return null
}

function trimTo(pieces: string[], length: number): string[] {
  const out: string[] = []
  let used = 0
  for (const p of pieces) {
    if (used + p.length <= length) {
      out.push(p)
      used += p.length
    } else {
      if (length > used) out.push(p.slice(0, length - used))
      break
    }
  }
  return out
}

/** Prompt-token estimate: about four characters per token, at least one. */
export function estimateTokens(chars: number): number {
  return chars <= 0 ? 1 : Math.ceil(chars / 4)
}

/** A deterministic unit vector for `text` (or a token array rendered to text). */
export function embedVector(text: string, dimensions: number): Float32Array {
  const v = new Float32Array(dimensions)
  let state = hashText(text)
  let norm = 0
  for (let i = 0; i < dimensions; i++) {
    state = nextState(state)
    const x = state / 0x80000000 - 1 // uniform in [-1, 1)
    v[i] = x
    norm += x * x
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 1
  for (let i = 0; i < dimensions; i++) v[i] = (v[i] ?? 0) * scale
  if (norm === 0 && dimensions > 0) v[0] = 1
  return v
}
