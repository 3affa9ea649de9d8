/**
 * The engine's stdout and stderr, into the daemon's log, bounded.
 *
 * - Lines: split on `\n` (a trailing `\r` dropped). A line longer than
 *   `maxLineChars` is cut there and logged with `truncated: <its length>`;
 *   the buffer never holds more than one cut line, whatever the engine writes
 *   without a newline.
 * - Rate: a token bucket over both streams (`linesPerSecond`, `burst`). Lines
 *   beyond it are dropped and counted; the next line that gets through is
 *   preceded by one warning with the count. The engine's start-up chatter
 *   (llama.cpp prints a few hundred lines of model metadata) fits in the burst.
 * - Shape: a JSON object line (pino, vLLM's JSON logging, the simulator) is
 *   logged at its own level with the object under `json` and its `msg` as the
 *   message; any other line as `{ stream, line }`. The object is nested rather
 *   than spread, so the engine's `level`, `time`, `pid` and `name` never
 *   collide with the daemon's own fields.
 * - The last lines are kept (`tail()`), so an exit can be reported with
 *   what the engine said last (`lastWords`: "error: failed to load model …").
 */

export interface OutputLog {
  trace: (o: object, msg?: string) => void
  debug: (o: object, msg?: string) => void
  info: (o: object, msg?: string) => void
  warn: (o: object, msg?: string) => void
  error: (o: object, msg?: string) => void
  fatal: (o: object, msg?: string) => void
}

export interface OutputLimits {
  /** @default 16384 */
  maxLineChars: number
  /** @default 100 */
  linesPerSecond: number
  /** @default 1000 */
  burst: number
  /** Lines kept for `tail()`. @default 20 */
  tailLines: number
}

export const DEFAULT_OUTPUT_LIMITS: OutputLimits = {
  maxLineChars: 16 * 1024,
  linesPerSecond: 100,
  burst: 1000,
  tailLines: 20
}

/** Splits a stream of text into lines, never buffering more than `maxChars`. */
export class LineSplitter {
  private buf = ''
  /** Characters of the current over-long line seen so far (0: not in one). */
  private overlong = 0
  private readonly maxChars: number
  private readonly onLine: (line: string, truncatedFrom: number | null) => void

  constructor (maxChars: number, onLine: (line: string, truncatedFrom: number | null) => void) {
    this.maxChars = maxChars
    this.onLine = onLine
  }

  push (chunk: string): void {
    let from = 0
    for (;;) {
      const nl = chunk.indexOf('\n', from)
      if (nl === -1) { this.append(chunk.slice(from)); return }
      this.append(chunk.slice(from, nl))
      this.finish()
      from = nl + 1
    }
  }

  /** The stream ended: a last line without a newline still counts. */
  end (): void {
    if (this.buf !== '' || this.overlong > 0) this.finish()
  }

  private append (s: string): void {
    if (s === '') return
    if (this.overlong > 0) { this.overlong += s.length; return }
    if (this.buf.length + s.length <= this.maxChars) { this.buf += s; return }
    // Keep the head, count the rest.
    this.overlong = this.buf.length + s.length
    this.buf = (this.buf + s.slice(0, this.maxChars - this.buf.length))
  }

  private finish (): void {
    let line = this.buf
    const overlong = this.overlong
    this.buf = ''
    this.overlong = 0
    if (line.endsWith('\r')) line = line.slice(0, -1)
    this.onLine(line, overlong > 0 ? overlong : null)
  }
}

/** A token bucket on an injectable clock. */
export class TokenBucket {
  private tokens: number
  private last: number
  private readonly rate: number
  private readonly burst: number
  private readonly now: () => number

  constructor (perSecond: number, burst: number, now: () => number) {
    this.rate = perSecond / 1000
    this.burst = burst
    this.tokens = burst
    this.now = now
    this.last = now()
  }

  take (): boolean {
    const t = this.now()
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) * this.rate)
    this.last = t
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

type Level = keyof OutputLog

const LEVEL_BY_NUMBER: Record<number, Level> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }
const LEVEL_BY_NAME: Record<string, Level> = {
  trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error', err: 'error', fatal: 'fatal', critical: 'fatal'
}

/** The daemon's level for an engine's JSON line: pino's numbers or the usual names; info when it has none. */
export function levelOf (entry: Record<string, unknown>): Level {
  const l = entry.level ?? entry.severity ?? entry.levelname
  if (typeof l === 'number') return LEVEL_BY_NUMBER[l] ?? 'info'
  if (typeof l === 'string') return LEVEL_BY_NAME[l.toLowerCase()] ?? 'info'
  return 'info'
}

/** Parses a line that is a JSON object; null for anything else. */
export function jsonObjectLine (line: string): Record<string, unknown> | null {
  const s = line.trimStart()
  if (!s.startsWith('{')) return null
  try {
    const v: unknown = JSON.parse(s)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : null
  } catch {
    return null
  }
}

export interface OutputCapture {
  /** A splitter for one stream; `onLine` sees every line before rate limiting (the simulator's port line). */
  stream: (name: 'stdout' | 'stderr', onLine?: (line: string) => void) => LineSplitter
  /** What the engine said last, oldest first. */
  tail: () => string[]
  /** Lines dropped by the rate limit so far. */
  dropped: () => number
}

export function captureOutput (log: OutputLog, limits: OutputLimits, now: () => number, onDropped?: (n: number) => void): OutputCapture {
  const bucket = new TokenBucket(limits.linesPerSecond, limits.burst, now)
  const tail: string[] = []
  let pendingDrops = 0
  let totalDrops = 0

  const emit = (stream: 'stdout' | 'stderr', line: string, truncatedFrom: number | null): void => {
    if (limits.tailLines > 0 && line !== '') {
      tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line)
      if (tail.length > limits.tailLines) tail.shift()
    }
    if (!bucket.take()) {
      pendingDrops++
      totalDrops++
      onDropped?.(1)
      return
    }
    if (pendingDrops > 0) {
      log.warn({ dropped: pendingDrops }, 'replica output lines dropped (rate limit)')
      pendingDrops = 0
    }
    const extra = truncatedFrom !== null ? { truncated: truncatedFrom } : {}
    const entry = truncatedFrom === null ? jsonObjectLine(line) : null
    if (entry !== null) {
      const msg = typeof entry.msg === 'string' ? entry.msg : typeof entry.message === 'string' ? entry.message : 'replica output'
      log[levelOf(entry)]({ stream, json: entry }, msg)
    } else {
      log.info({ stream, line, ...extra }, 'replica output')
    }
  }

  return {
    stream: (name, onLine) => new LineSplitter(limits.maxLineChars, (line, truncatedFrom) => {
      onLine?.(line)
      emit(name, line, truncatedFrom)
    }),
    tail: () => tail.slice(),
    dropped: () => totalDrops
  }
}

const ERRORISH = /\b(error|fatal|fail(ed|ure)?|panic|exception|unknown|invalid|cannot|can't|unable|not found|denied|refused|out of memory|oom)\b/i

/**
 * The line of an engine's last output that best says why it stopped: the last
 * one that reads like an error (a JSON line at level error or fatal, or a line
 * with an error word that is not indented: indented lines are help text, flag
 * lists, traceback frames), else the last one. JSON lines count by their
 * message (and `err`). Null when it said nothing.
 */
export function lastWords (tail: readonly string[]): string | null {
  const lines = tail.map(readable).filter((l) => l.text.trim() !== '')
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!
    if (l.error || (!/^\s/.test(l.text) && ERRORISH.test(l.text))) return l.text.trim()
  }
  return lines.at(-1)?.text.trim() ?? null
}

function readable (line: string): { text: string, error: boolean } {
  const o = jsonObjectLine(line)
  if (o === null) return { text: line.trimEnd(), error: false }
  const msg = typeof o.msg === 'string' ? o.msg : typeof o.message === 'string' ? o.message : ''
  const err = o.err ?? o.error
  const errText = typeof err === 'string' ? err : typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string' ? (err as { message: string }).message : ''
  const level = levelOf(o)
  return { text: [msg, errText].filter((x) => x !== '').join(': '), error: level === 'error' || level === 'fatal' }
}
