/**
 * MESHD_<PATH> environment overrides (docs/configuration.md): MESHD_HTTP_LISTEN sets
 * http.listen, MESHD_MESH_HEARTBEAT_MS sets mesh.heartbeat_ms,
 * MESHD_PROVIDERS_0_COST_PER_HOUR sets providers[0].cost_per_hour. Keys contain
 * underscores themselves, so the name is resolved against the schema's known
 * keys (longest match first) rather than split blindly. Values are read as
 * YAML scalars or flow collections: `true`, `1000`, `[a, b]`.
 */
import { parse as parseYamlValue } from 'yaml'
import { configSchema } from './schema.ts'
import { objectShape } from './shape.ts'
import { ConfigError } from './errors.ts'

/** Variables that configure the launcher or the CLI, not the config file. */
export const RESERVED_ENV = new Set(['MESHD_CONFIG', 'MESHD_NODE'])

/**
 * One MESHD_* variable applied to the raw config. A problem at or below
 * `owns` comes from the variable, not the file: `owns` is the key it set, or
 * the first section it had to create (MESHD_PROVIDERS_0_COST_PER_HOUR with no
 * providers in the file owns the whole `providers` list it made).
 */
export interface EnvOverride {
  variable: string
  path: Array<string | number>
  owns: Array<string | number>
}

/** Applies the MESHD_* variables of `env` to `raw` in place; returns what each one set. */
export function applyEnvOverrides (raw: Record<string, unknown>, env: NodeJS.ProcessEnv): EnvOverride[] {
  const applied: EnvOverride[] = []
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith('MESHD_') || RESERVED_ENV.has(name) || text === undefined) continue
    const path = resolveEnvPath(name.slice('MESHD_'.length))
    if (path === null) throw new ConfigError(`environment ${name}`, name, 'the name of a config key after MESHD_ (e.g. MESHD_HTTP_LISTEN for http.listen)')
    let value: unknown
    try {
      value = parseYamlValue(text)
    } catch {
      value = text
    }
    const createdAt = setPath(raw, path, value)
    applied.push({ variable: name, path, owns: path.slice(0, createdAt + 1) })
  }
  return applied
}

/** Maps the part after MESHD_ to a config path, or null. */
export function resolveEnvPath (rest: string): Array<string | number> | null {
  return walk(configSchema, rest.toLowerCase())
}

function walk (schema: unknown, rest: string): Array<string | number> | null {
  if (rest === '') return []
  const index = /^(\d+)(?:_|$)/.exec(rest)
  if (index !== null && isArray(schema)) {
    const tail = walk(elementOf(schema), rest.slice(index[0].length))
    return tail === null ? null : [Number(index[1]), ...tail]
  }
  const shape = objectShape(schema)
  if (shape === undefined) return null
  const keys = Object.keys(shape).sort((a, b) => b.length - a.length)
  for (const key of keys) {
    if (rest === key) return [key]
    if (rest.startsWith(key + '_')) {
      const tail = walk(shape[key], rest.slice(key.length + 1))
      if (tail !== null) return [key, ...tail]
    }
  }
  return null
}

function defOf (schema: unknown): Record<string, unknown> | undefined {
  return (schema as { _zod?: { def: Record<string, unknown> } } | undefined)?._zod?.def
}

function unwrap (schema: unknown): unknown {
  let s = schema
  for (let i = 0; i < 10; i++) {
    const def = defOf(s)
    if (def === undefined || def.type === 'array' || def.type === 'object' || def.type === 'union') return s
    const inner = def.innerType ?? def.in
    if (inner === undefined) return s
    s = inner
  }
  return s
}

function isArray (schema: unknown): boolean {
  return defOf(unwrap(schema))?.type === 'array'
}

function elementOf (schema: unknown): unknown {
  return defOf(unwrap(schema))?.element
}

/** Sets the value, creating sections on the way; returns the index of the first segment it created (the last one when none). */
function setPath (raw: Record<string, unknown>, path: Array<string | number>, value: unknown): number {
  let cur: Record<string | number, unknown> = raw
  let createdAt = path.length - 1
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i]!
    const next = cur[seg]
    if (next === null || typeof next !== 'object') {
      cur[seg] = typeof path[i + 1] === 'number' ? [] : {}
      createdAt = Math.min(createdAt, i)
    }
    cur = cur[seg] as Record<string | number, unknown>
  }
  cur[path[path.length - 1]!] = value
  return createdAt
}
