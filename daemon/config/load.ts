/**
 * Reads, overrides and validates the config. Every failure is a ConfigError
 * whose message names the file (or environment variable), the key and what
 * was expected, because the operator reading it is usually looking at a
 * systemd journal, not at the code.
 */
import { readFileSync } from 'node:fs'
import { parseDocument } from 'yaml'
import { configSchema, PROVIDER_KINDS, type Config } from './schema.ts'
import { applyEnvOverrides, type EnvOverride } from './env.ts'
import { ConfigError } from './errors.ts'
import { objectShape } from './shape.ts'

export { ConfigError }
export const DEFAULT_CONFIG_FILE = '/etc/meshd/meshd.yaml'

/** --config, else $MESHD_CONFIG, else /etc/meshd/meshd.yaml (README: Command line). */
export function resolveConfigPath (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.MESHD_CONFIG ?? DEFAULT_CONFIG_FILE
}

/**
 * Bounds on what a config file may make the parser do. A config is a few
 * kilobytes; YAML aliases can make a small file expand exponentially ("billion
 * laughs"), so the expansion is capped by the number of alias uses (the yaml
 * package's own guard, counted per alias) and the text by its size.
 */
export const MAX_CONFIG_BYTES = 1 << 20
export const MAX_ALIAS_COUNT = 100

/** Parses YAML text into a plain object; syntax errors name the line. */
export function parseYaml (text: string, file: string): Record<string, unknown> {
  if (text.length > MAX_CONFIG_BYTES) throw new ConfigError(file, '(file)', `a config file of at most ${MAX_CONFIG_BYTES} bytes, not ${text.length}`)
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!
    const where = e.linePos?.[0] !== undefined ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'document'
    throw new ConfigError(file, where, `valid YAML (${e.code}: ${e.message.split('\n')[0]})`)
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (err) {
    // The yaml package throws a ReferenceError when aliases expand too far (or point nowhere).
    const why = /alias count/i.test((err as Error).message)
      ? `YAML whose aliases (*name) expand to a bounded size; these expand past the limit of ${MAX_ALIAS_COUNT} (an alias bomb?)`
      : `valid YAML (${(err as Error).message.split('\n')[0]})`
    throw new ConfigError(file, '(document)', why)
  }
  if (value === null || value === undefined) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(file, '(top level)', 'a mapping of keys such as `cluster:`')
  return value as Record<string, unknown>
}

/**
 * Validates a raw object (file contents with overrides applied). A problem in
 * a value that a MESHD_* variable set is reported against that variable, not
 * the file, which does not contain it.
 */
export function validateConfig (raw: unknown, file: string, overrides: readonly EnvOverride[] = []): Config {
  const result = configSchema.safeParse(raw)
  if (result.success) return result.data
  const issues = result.error.issues
  const first = issues[0]!
  // Where the problem is; for an unknown key, the key itself.
  const at = first.code === 'unrecognized_keys' ? [...first.path, first.keys[0]!] : first.path
  const source = sourceOf(at, file, overrides)
  const key = at.length > 0 ? at.join('.') : '(top level)'
  if (first.code === 'unrecognized_keys') {
    const container = valueAt(raw, first.path)
    const kind = isProviderPath(first.path) ? (container as { kind?: unknown } | undefined)?.kind : undefined
    const problem = typeof kind === 'string' ? `unknown key for a provider of kind ${kind}` : 'unknown key'
    throw new ConfigError(source, key, `one of ${knownKeysAt(first.path, raw)}`, issues.length, problem)
  }
  if (first.code === 'invalid_union' && 'discriminator' in first && first.discriminator === 'kind' && isProviderPath(first.path.slice(0, -1))) {
    const got = valueAt(raw, first.path)
    const problem = got === undefined ? 'no kind given' : `unknown provider kind ${typeof got === 'string' ? JSON.stringify(got) : describe(got)}`
    throw new ConfigError(source, key, providerKindsInWords(), issues.length, problem)
  }
  let expected = first.message
  if (first.code === 'invalid_type') {
    const got = valueAt(raw, first.path)
    expected = got === undefined ? `${first.expected} (the key is required)` : `${first.expected}, got ${describe(got)}`
  }
  // zod prefixes its messages ("Invalid option: expected ..."); the ConfigError says "expected" itself.
  expected = expected.replace(/^(Invalid \w+|Too (small|big)): /, '')
  throw new ConfigError(source, key, expected, issues.length)
}

/** Loads the config file, applies MESHD_* overrides, validates. */
export function loadConfig (file: string, env: NodeJS.ProcessEnv = process.env): Config {
  return readConfig(file, env).config
}

/** loadConfig, also saying which MESHD_* variables were applied (for `meshd config check`). */
export function readConfig (file: string, env: NodeJS.ProcessEnv = process.env): { config: Config, overrides: EnvOverride[] } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'ENOENT' ? 'an existing file (run `meshd init` to write one, or pass --config FILE)' : `a readable file (${code ?? String(err)})`
    throw new ConfigError(file, '(file)', hint)
  }
  const raw = parseYaml(text, file)
  const overrides = applyEnvOverrides(raw, env)
  return { config: validateConfig(raw, file, overrides), overrides }
}

/**
 * Who to blame for a problem at `path`: the variable that set it (or created
 * the section it is in), else the file, naming the variables that changed the
 * same section (a cross-key check such as min > max may involve one).
 */
function sourceOf (path: ReadonlyArray<PropertyKey>, file: string, overrides: readonly EnvOverride[]): string {
  const owner = overrides.find((o) => startsWith(path, o.owns))
  if (owner !== undefined) return `environment ${owner.variable}`
  const near = overrides.filter((o) => startsWith(path, o.path.slice(0, -1)) && o.path.length > 1)
  return near.length === 0 ? file : `${file} (with ${near.map((o) => o.variable).join(', ')} from the environment)`
}

function startsWith (path: ReadonlyArray<PropertyKey>, prefix: ReadonlyArray<PropertyKey>): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => String(seg) === String(path[i]))
}

function isProviderPath (path: ReadonlyArray<PropertyKey>): boolean {
  return path.length === 2 && path[0] === 'providers' && typeof path[1] === 'number'
}

/** "local (meshd processes on ...), ssh (...) or aws (...)". */
export function providerKindsInWords (): string {
  const kinds = Object.entries(PROVIDER_KINDS).map(([kind, what]) => `${kind} (${what})`)
  return kinds.length === 1 ? kinds[0]! : `${kinds.slice(0, -1).join(', ')} or ${kinds[kinds.length - 1]!}`
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

function knownKeysAt (path: ReadonlyArray<PropertyKey>, raw: unknown): string {
  let shape: unknown = configSchema
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!
    if (typeof seg === 'number') continue
    shape = objectShape(shape, valueAt(raw, path.slice(0, i)))?.[seg as string]
  }
  const keys = Object.keys(objectShape(shape, valueAt(raw, path)) ?? {})
  return keys.length > 0 ? keys.join(', ') : '(none)'
}
