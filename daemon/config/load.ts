/**
 * Reads, overrides and validates the config. Every failure is a ConfigError
 * whose message names the file (or environment variable), the key and what
 * was expected, because the operator reading it is usually looking at a
 * systemd journal, not at the code.
 */
import { readFileSync } from 'node:fs'
import { parseDocument } from 'yaml'
import { configSchema, type Config } from './schema.ts'
import { applyEnvOverrides } from './env.ts'
import { ConfigError } from './errors.ts'
import { objectShape } from './shape.ts'

export { ConfigError }
export const DEFAULT_CONFIG_FILE = '/etc/meshd/meshd.yaml'

/** --config, else $MESHD_CONFIG, else /etc/meshd/meshd.yaml (INTERFACE.md). */
export function resolveConfigPath (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.MESHD_CONFIG ?? DEFAULT_CONFIG_FILE
}

/** Parses YAML text into a plain object; syntax errors name the line. */
export function parseYaml (text: string, file: string): Record<string, unknown> {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!
    const where = e.linePos?.[0] !== undefined ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'document'
    throw new ConfigError(file, where, `valid YAML (${e.code}: ${e.message.split('\n')[0]})`)
  }
  const value: unknown = doc.toJS()
  if (value === null || value === undefined) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(file, '(top level)', 'a mapping of keys such as `cluster:`')
  return value as Record<string, unknown>
}

/** Validates a raw object (file contents with overrides applied). */
export function validateConfig (raw: unknown, file: string): Config {
  const result = configSchema.safeParse(raw)
  if (result.success) return result.data
  const issues = result.error.issues
  const first = issues[0]!
  const key = first.path.length > 0 ? first.path.join('.') : '(top level)'
  let expected = first.message
  if (first.code === 'unrecognized_keys') {
    const path = [...first.path, first.keys[0]].join('.')
    throw new ConfigError(file, path, `one of ${knownKeysAt(first.path)}`, issues.length, 'unknown key')
  }
  if (first.code === 'invalid_type') {
    const got = valueAt(raw, first.path)
    expected = got === undefined ? `${first.expected} (the key is required)` : `${first.expected}, got ${describe(got)}`
  }
  // zod prefixes its messages ("Invalid option: expected ..."); the ConfigError says "expected" itself.
  expected = expected.replace(/^(Invalid \w+|Too (small|big)): /, '')
  throw new ConfigError(file, key, expected, issues.length)
}

/** Loads the config file, applies MESHD_* overrides, validates. */
export function loadConfig (file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'ENOENT' ? 'an existing file (run `meshd init` to write one, or pass --config FILE)' : `a readable file (${code ?? String(err)})`
    throw new ConfigError(file, '(file)', hint)
  }
  const raw = parseYaml(text, file)
  applyEnvOverrides(raw, env)
  return validateConfig(raw, file)
}

function valueAt (raw: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = raw
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<PropertyKey, unknown>)[seg]
  }
  return cur
}

function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  return `${typeof v} ${JSON.stringify(v)}`
}

function knownKeysAt (path: ReadonlyArray<PropertyKey>): string {
  let shape: unknown = configSchema
  for (const seg of path) {
    if (typeof seg === 'number') continue
    shape = objectShape(shape)?.[seg as string]
  }
  const keys = Object.keys(objectShape(shape) ?? {})
  return keys.length > 0 ? keys.join(', ') : '(none)'
}
