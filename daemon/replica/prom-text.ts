/**
 * A small, tolerant parser of the Prometheus text exposition format (0.0.4),
 * also reading what OpenMetrics 1.0 and Prometheus 3's quoted UTF-8 names add,
 * for the engine metrics a replica publishes (llama.cpp's server, vLLM,
 * SGLang, TGI, the simulator). Pure: text in, samples out.
 *
 * What it reads, line by line (`\n` or `\r\n`):
 *
 * | line                                             | result                         |
 * | ------------------------------------------------ | ------------------------------ |
 * | empty, or only spaces                            | skipped                        |
 * | `# HELP …`, `# TYPE …`, `# EOF`, any `#` comment | skipped                        |
 * | `name value`                                     | sample, no labels              |
 * | `name{a="x",b="y",} value [timestamp]`           | sample; a trailing comma is ok |
 * | `{"dotted.name",a="x"} value`                    | sample (Prometheus 3 quoting)  |
 * | `name{"quoted.label"="x"} value`                 | sample                         |
 * | label values with `\"`, `\\`, `\n` escapes      | unescaped; `}` `,` `=` inside quotes are text |
 * | values `NaN`, `+Inf`, `-Inf`, `Inf`, `1e+06`, `-0.5`, `0x1F` | numbers (Go's ParseFloat spellings, case-insensitive) |
 * | `value # {trace_id="…"} 1.0` (exemplar)          | sample; exemplar ignored       |
 * | anything else (no value, bad quoting, junk)      | skipped, counted in `errors`   |
 *
 * A line never throws: a scrape of a misbehaving engine yields what could be
 * read and the number of lines that could not.
 */

export interface Sample {
  name: string
  /** A null-prototype record: a label called `__proto__` is just a label. */
  labels: Record<string, string>
  value: number
  /** Milliseconds since the epoch, when the line gave one. */
  timestamp?: number
}

export interface ParseResult {
  samples: Sample[]
  /** Lines that were neither a comment, blank nor a readable sample. */
  errors: number
  /** The first few unreadable lines (at most 3, each cut to 200 characters), for a log line. */
  firstErrors: string[]
}

export interface ParseOptions {
  /** Keep only these metric names; other lines are skipped without parsing their labels. */
  names?: ReadonlySet<string>
}

const MAX_ERROR_SAMPLES = 3

export function parsePrometheusText (text: string, opts: ParseOptions = {}): ParseResult {
  const out: ParseResult = { samples: [], errors: 0, firstErrors: [] }
  const names = opts.names
  let start = 0
  const n = text.length
  while (start <= n) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = n
    const lineEnd = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end
    if (lineEnd > start) parseLine(text, start, lineEnd, names, out)
    start = end + 1
  }
  return out
}

function parseLine (text: string, from: number, to: number, names: ReadonlySet<string> | undefined, out: ParseResult): void {
  const i = skipSpace(text, from, to)
  if (i >= to) return
  if (text.charCodeAt(i) === 35 /* # */) return
  const r = readSample(text, i, to, names)
  if (r === SKIPPED) return
  if (r === null) {
    out.errors++
    if (out.firstErrors.length < MAX_ERROR_SAMPLES) out.firstErrors.push(text.slice(from, Math.min(to, from + 200)))
    return
  }
  out.samples.push(r)
}

const SKIPPED = Symbol('skipped')

/** Reads `name{labels} value [ts]`; null when malformed, SKIPPED when filtered out. */
function readSample (text: string, i: number, to: number, names: ReadonlySet<string> | undefined): Sample | null | typeof SKIPPED {
  let name: string | null = null
  if (text.charCodeAt(i) !== 123 /* { */) {
    const nameEnd = scanName(text, i, to)
    if (nameEnd === i) return null
    name = text.slice(i, nameEnd)
    if (names !== undefined && !names.has(name)) return SKIPPED
    i = skipSpace(text, nameEnd, to)
  }
  const labels: Record<string, string> = Object.create(null) as Record<string, string>
  if (i < to && text.charCodeAt(i) === 123 /* { */) {
    i++
    let first = true
    for (;;) {
      i = skipSpace(text, i, to)
      if (i >= to) return null
      if (text.charCodeAt(i) === 125 /* } */) { i++; break }
      // A key: a bare label name or a quoted string. Inside braces, a quoted
      // string not followed by `=` is the metric name (Prometheus 3).
      let key: string
      if (text.charCodeAt(i) === 34 /* " */) {
        const s = readQuoted(text, i, to)
        if (s === null) return null
        key = s.value
        i = skipSpace(text, s.end, to)
        if (i < to && text.charCodeAt(i) !== 61 /* = */) {
          if (!first || name !== null) return null
          name = key
          if (names !== undefined && !names.has(name)) return SKIPPED
          if (text.charCodeAt(i) === 44 /* , */) i++
          first = false
          continue
        }
      } else {
        const keyEnd = scanName(text, i, to)
        if (keyEnd === i) return null
        key = text.slice(i, keyEnd)
        i = skipSpace(text, keyEnd, to)
      }
      first = false
      if (i >= to || text.charCodeAt(i) !== 61 /* = */) return null
      i = skipSpace(text, i + 1, to)
      if (i >= to || text.charCodeAt(i) !== 34 /* " */) return null
      const v = readQuoted(text, i, to)
      if (v === null) return null
      labels[key] = v.value
      i = skipSpace(text, v.end, to)
      if (i < to && text.charCodeAt(i) === 44 /* , */) { i++; continue }
      if (i < to && text.charCodeAt(i) === 125 /* } */) { i++; break }
      return null
    }
  }
  if (name === null) return null
  // The value must be separated from what precedes it only when a bare name
  // precedes it; after `}` a space is customary but not needed.
  i = skipSpace(text, i, to)
  const valueEnd = scanToken(text, i, to)
  if (valueEnd === i) return null
  const value = parseValue(text.slice(i, valueEnd))
  if (value === null) return null
  const sample: Sample = { name, labels, value }
  i = skipSpace(text, valueEnd, to)
  if (i < to && text.charCodeAt(i) !== 35 /* # exemplar */) {
    const tsEnd = scanToken(text, i, to)
    const ts = Number(text.slice(i, tsEnd))
    if (!Number.isFinite(ts)) return null
    sample.timestamp = ts
    i = skipSpace(text, tsEnd, to)
    if (i < to && text.charCodeAt(i) !== 35) return null
  }
  return sample
}

/** Metric and label names: [a-zA-Z_:][a-zA-Z0-9_:]* (colons are only legal in metric names; we do not police that). */
function scanName (text: string, i: number, to: number): number {
  const start = i
  while (i < to) {
    const c = text.charCodeAt(i)
    const ok = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58 || (i > start && c >= 48 && c <= 57)
    if (!ok) break
    i++
  }
  return i
}

function scanToken (text: string, i: number, to: number): number {
  while (i < to) {
    const c = text.charCodeAt(i)
    if (c === 32 || c === 9) break
    i++
  }
  return i
}

function skipSpace (text: string, i: number, to: number): number {
  while (i < to) {
    const c = text.charCodeAt(i)
    if (c !== 32 && c !== 9) break
    i++
  }
  return i
}

/** A double-quoted string starting at `i` with `\\`, `\"` and `\n` escapes (any other `\x` is kept as `\x`). */
function readQuoted (text: string, i: number, to: number): { value: string, end: number } | null {
  i++ // opening quote
  let value = ''
  let runStart = i
  while (i < to) {
    const c = text.charCodeAt(i)
    if (c === 34 /* " */) return { value: value + text.slice(runStart, i), end: i + 1 }
    if (c === 92 /* \ */) {
      if (i + 1 >= to) return null
      value += text.slice(runStart, i)
      const e = text[i + 1]
      value += e === 'n' ? '\n' : e === '"' ? '"' : e === '\\' ? '\\' : `\\${e}`
      i += 2
      runStart = i
      continue
    }
    i++
  }
  return null
}

const FLOAT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)$/

/** Go's ParseFloat spellings as Prometheus writes and accepts them. */
export function parseValue (s: string): number | null {
  switch (s.toLowerCase()) {
    case 'nan': case '+nan': case '-nan': return Number.NaN
    case '+inf': case 'inf': case '+infinity': case 'infinity': return Number.POSITIVE_INFINITY
    case '-inf': case '-infinity': return Number.NEGATIVE_INFINITY
  }
  if (!FLOAT.test(s)) return null
  // Number() does not take a sign in front of a hex literal.
  if (/^[+-]0[xX]/.test(s)) return (s[0] === '-' ? -1 : 1) * Number(s.slice(1))
  return Number(s)
}
