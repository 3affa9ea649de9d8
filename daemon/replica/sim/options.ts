// The simulator's knobs, their defaults, and the CLI that sets them. One table
// (FLAGS) drives parsing, validation and --help so they cannot disagree.

import { parseArgs } from 'node:util'

export interface SimOptions {
  host: string
  /** 0 lets the OS choose. */
  port: number
  models: string[]
  name: string
  slots: number
  queueLimit: number
  ttftMs: number
  /** Per-request decode rate while holding a slot; 0 = unbounded (all tokens at the first-token time). */
  tokensPerSecond: number
  /** Prompt processing rate added to ttft; 0 = prompt length does not matter. */
  prefillTokensPerSecond: number
  /** Per extra busy slot, fractional slowdown of every running request's decode rate. */
  decodeSlowdown: number
  /** Default completion length when a request names none. */
  maxTokens: number
  embeddingDim: number
  /** Fraction of inference requests answered 500 before any byte. */
  failRate: number
  /** /health (and inference) answer 503 until this long after start. */
  readyAfterMs: number
  /** Requests stop emitting after this many tokens but keep their slot; Infinity = never. */
  stallAfterTokens: number
}

export const DEFAULT_OPTIONS: SimOptions = {
  host: '127.0.0.1',
  port: 0,
  models: ['sim'],
  name: 'sim',
  slots: 4,
  queueLimit: 1024,
  ttftMs: 50,
  tokensPerSecond: 40,
  prefillTokensPerSecond: 0,
  decodeSlowdown: 0,
  maxTokens: 64,
  embeddingDim: 16,
  failRate: 0,
  readyAfterMs: 0,
  stallAfterTokens: Infinity,
}

type NumberKey = { [K in keyof SimOptions]: SimOptions[K] extends number ? K : never }[keyof SimOptions]

interface NumberFlag {
  key: NumberKey
  int: boolean
  min: number
  max: number
  help: string
}

const FLAGS: Record<string, NumberFlag> = {
  port: { key: 'port', int: true, min: 0, max: 65535, help: 'listen port; 0 = OS-chosen (see the listening line)' },
  slots: { key: 'slots', int: true, min: 1, max: 100000, help: 'requests decoded at once' },
  'queue-limit': { key: 'queueLimit', int: true, min: 0, max: 1e9, help: 'waiting requests beyond the slots; more get 503' },
  'ttft-ms': { key: 'ttftMs', int: false, min: 0, max: 3.6e6, help: 'time from getting a slot to the first token' },
  'tokens-per-second': { key: 'tokensPerSecond', int: false, min: 0, max: 1e9, help: 'decode rate per request; 0 = unbounded' },
  'prefill-tokens-per-second': { key: 'prefillTokensPerSecond', int: false, min: 0, max: 1e12, help: 'adds prompt_tokens/rate to ttft; 0 = off' },
  'decode-slowdown': { key: 'decodeSlowdown', int: false, min: 0, max: 100, help: 'per extra busy slot, fraction by which decoding slows' },
  'max-tokens': { key: 'maxTokens', int: true, min: 1, max: 1e7, help: 'default completion length' },
  'embedding-dim': { key: 'embeddingDim', int: true, min: 1, max: 8192, help: 'default embedding dimension' },
  'fail-rate': { key: 'failRate', int: false, min: 0, max: 1, help: 'fraction of inference requests answered 500' },
  'ready-after-ms': { key: 'readyAfterMs', int: false, min: 0, max: 3.6e6, help: '/health is 503 until then' },
  'stall-after-tokens': { key: 'stallAfterTokens', int: true, min: 0, max: 1e9, help: 'stop emitting after N tokens, keep the slot' },
}

export class UsageError extends Error {
  override name = 'UsageError'
}

export function usage(): string {
  const lines = [
    'usage: node daemon/replica/sim/main.ts [options]',
    '  --host H                          listen address (127.0.0.1)',
    '  --models a,b                      served model ids; the first labels vLLM metrics (sim)',
    '  --name NAME                       name in log lines (sim)',
    '  --log-level L                     fatal|error|warn|info|debug|trace|silent (info)',
  ]
  for (const [flag, f] of Object.entries(FLAGS)) {
    const def = DEFAULT_OPTIONS[f.key]
    lines.push(`  --${`${flag} N`.padEnd(32)}${f.help}${Number.isFinite(def) ? ` (${def})` : ''}`)
  }
  return lines.join('\n')
}

export interface CliOptions {
  options: SimOptions
  logLevel: string
  help: boolean
}

/** Parses argv (without node and script); throws UsageError on anything it cannot use. */
export function parseCli(argv: readonly string[]): CliOptions {
  const spec: Record<string, { type: 'string' | 'boolean' }> = {
    host: { type: 'string' },
    models: { type: 'string' },
    name: { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean' },
  }
  for (const flag of Object.keys(FLAGS)) spec[flag] = { type: 'string' }
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const options: SimOptions = { ...DEFAULT_OPTIONS }
  for (const [flag, f] of Object.entries(FLAGS)) {
    const raw = values[flag]
    if (typeof raw === 'string') options[f.key] = parseNumber(flag, raw, f)
  }
  if (typeof values.host === 'string') options.host = values.host
  if (typeof values.name === 'string') options.name = values.name
  if (typeof values.models === 'string') {
    const models = values.models.split(',').map((m) => m.trim()).filter((m) => m.length > 0)
    if (models.length === 0) throw new UsageError('--models needs at least one model id')
    options.models = models
  }
  const logLevel = typeof values['log-level'] === 'string' ? values['log-level'] : 'info'
  return { options, logLevel, help: values.help === true }
}

function parseNumber(flag: string, raw: string, f: NumberFlag): number {
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag}: not a number: ${raw}`)
  if (f.int && !Number.isInteger(n)) throw new UsageError(`--${flag}: must be an integer: ${raw}`)
  if (n < f.min || n > f.max) throw new UsageError(`--${flag}: must be within [${f.min}, ${f.max}]: ${raw}`)
  return n
}
