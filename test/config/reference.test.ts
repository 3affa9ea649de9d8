/**
 * docs/configuration.md stays true to the schema (daemon/config/schema.ts):
 * every key of the schema is documented, every documented key exists, each
 * documented type is the schema's, and each documented default is what the
 * schema fills in when the key is absent.
 *
 * The reference is read as Markdown tables whose header starts `| key | type
 * | default |`; the key cell holds the full dotted path in backticks:
 * `mesh.heartbeat_ms`, `providers[].name` (every provider kind),
 * `providers[ssh].hosts[].ip` (one kind; `[]` is any list element).
 * A default is `required`, `—` (none: unset), one `YAML value` in backticks,
 * or *words in italics* for one computed at run time.
 *
 * Defaults are compared by behaviour, not by reading zod internals: the
 * config parsed with the key absent must equal the config parsed with the key
 * set to the documented value (so `1h` and 3600000 ms, or a readiness probe
 * filled in by a transform, compare as the daemon sees them).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { parse as parseYamlValue } from 'yaml'
import { configSchema } from '../../daemon/config/schema.ts'

const REFERENCE = join(import.meta.dirname, '../../docs/configuration.md')

interface Row { key: string, type: string, default: string, line: number }
type Json = Record<string, unknown> & { properties?: Record<string, Json>, items?: Json, oneOf?: Json[], anyOf?: Json[], required?: string[], enum?: unknown[], const?: unknown, type?: string | string[], default?: unknown }

/** The rows of every `| key | type | default | ...` table. */
function readReference (text: string): Row[] {
  const rows: Row[] = []
  let inTable = false
  text.split('\n').forEach((line, i) => {
    if (!line.startsWith('|')) { inTable = false; return }
    const cells = line.slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined).split(/(?<!\\)\|/).map((c) => c.trim())
    if (/^key$/i.test(cells[0] ?? '') && /^type$/i.test(cells[1] ?? '') && /^default$/i.test(cells[2] ?? '')) { inTable = true; return }
    if (!inTable || /^:?-+:?$/.test(cells[0] ?? '')) return
    const key = /^`([^`]+)`$/.exec(cells[0] ?? '')
    if (key === null) throw new Error(`docs/configuration.md:${i + 1}: the key cell must be one dotted path in backticks, got ${JSON.stringify(cells[0])}`)
    rows.push({ key: key[1]!, type: cells[1] ?? '', default: cells[2] ?? '', line: i + 1 })
  })
  return rows
}

const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Json
const KINDS = (schema.properties!.providers!.items!.oneOf ?? []).map((o) => o.properties!.kind!.const as string)

/** A doc path segment: `name`, `name[]` (an element of the list) or `name[kind]` (a provider of that kind). */
interface Segment { name: string, element: null | 'any' | string }
function segments (key: string): Segment[] {
  return key.split('.').map((s) => {
    const m = /^([a-z_0-9]+)(?:\[([a-z0-9]*)\])?$/.exec(s)
    if (m === null) throw new Error(`bad key syntax: ${key}`)
    return { name: m[1]!, element: m[2] === undefined ? null : m[2] === '' ? 'any' : m[2] }
  })
}

/** The object options of a node: its own properties, or those of each object branch of a union. */
function objectBranches (node: Json): Json[] {
  if (node.properties !== undefined) return [node]
  return [...(node.anyOf ?? []), ...(node.oneOf ?? [])].filter((o) => o.properties !== undefined)
}

/**
 * The schema node(s) a doc key names, one per provider kind it covers (each
 * with the kind, for building a config), or [] when the key does not exist
 * for some kind it claims.
 */
function resolve (key: string): Array<{ node: Json, kind: string | null, required: boolean }> {
  let found: Array<{ node: Json, kind: string | null, required: boolean }> = [{ node: schema, kind: null, required: true }]
  for (const seg of segments(key)) {
    const next: typeof found = []
    for (const f of found) {
      const holders = objectBranches(f.node).filter((o) => o.properties![seg.name] !== undefined)
      if (holders.length === 0) return []
      const holder = holders[0]!
      let node = holder.properties![seg.name]!
      const required = holder.required?.includes(seg.name) ?? false
      if (seg.element === null) { next.push({ node, kind: f.kind, required }); continue }
      if (node.items === undefined) return []
      node = node.items
      if (node.oneOf === undefined) {
        if (seg.element !== 'any') return []
        next.push({ node, kind: f.kind, required })
        continue
      }
      const kinds = seg.element === 'any' ? KINDS : [seg.element]
      for (const kind of kinds) {
        const option = node.oneOf.find((o) => o.properties?.kind?.const === kind)
        if (option === undefined) return []
        next.push({ node: option, kind, required })
      }
    }
    found = next
  }
  return found
}

/** Every key of the schema as a doc path, providers spelt per kind. */
function schemaKeys (node: Json, prefix: string, out: string[]): string[] {
  for (const branch of objectBranches(node)) {
    for (const [name, child] of Object.entries(branch.properties!)) {
      const path = prefix === '' ? name : `${prefix}.${name}`
      if (out.includes(path)) continue
      out.push(path)
      if (child.items?.oneOf !== undefined) {
        for (const option of child.items.oneOf) schemaKeys(option, `${path}[${option.properties!.kind!.const as string}]`, out)
      } else if (child.items !== undefined) {
        schemaKeys(child.items, `${path}[]`, out)
      } else {
        schemaKeys(child, path, out)
      }
    }
  }
  return out
}

/** A doc key, with `providers[]` read as each kind. */
function perKind (key: string): string[] {
  return key.includes('providers[]') ? KINDS.map((k) => key.replace('providers[]', `providers[${k}]`)) : [key]
}

/** The word(s) a type cell must start with, from the schema. */
function typeWord (node: Json): string {
  if (node.enum !== undefined || node.const !== undefined) return 'one of'
  const union = node.anyOf ?? node.oneOf
  if (union !== undefined) return union.map(typeWord).join(' or ')
  const type = node.type
  if (Array.isArray(type)) return type.length === 2 && type.includes('string') && type.includes('number') ? 'duration' : type.join(' or ')
  switch (type) {
    case 'array': return 'list'
    case 'object': return 'mapping'
    case 'null': return 'null'
    case undefined: return 'any'
    default: return type
  }
}

// Building configs: the smallest valid content of each container a key may sit in.
const MINIMAL: Record<string, unknown> = {
  replica: { models: ['m'], command: 'sim' },
  instance: { provider: 'p', id: 'i-1', launched_at: 0 },
  'replica.readiness_probe': {},
  'providers[local]': { name: 'p', kind: 'local', replica: { models: ['m'] } },
  'providers[ssh]': { name: 'p', kind: 'ssh', replica: { models: ['m'] }, hosts: [{ ip: '10.0.0.1' }] },
  'providers[aws]': { name: 'p', kind: 'aws', replica: { models: ['m'] }, regions: ['us-east-1'], instance_types: ['c7a.large'], image_id: 'ami-1' },
  'providers[ssh].hosts[]': { ip: '10.0.0.1' },
  'providers[aws].launch_template': { id: 'lt-1' }
}

/**
 * A minimal valid config holding the container of `key` (one kind's spelling),
 * and the raw path to the key in it.
 */
function configAround (key: string): { raw: Record<string, unknown>, path: Array<string | number> } {
  const raw: Record<string, unknown> = { cluster: 'x' }
  const path: Array<string | number> = []
  let cur: Record<string | number, unknown> = raw
  let docPath = ''
  const segs = segments(key)
  segs.forEach((seg, i) => {
    docPath = docPath === '' ? seg.name : `${docPath}.${seg.name}`
    path.push(seg.name)
    if (i === segs.length - 1) {
      if (seg.element !== null) throw new Error(`reference test: ${key}: a key names the list, not its elements`)
      return
    }
    if (seg.element !== null) {
      docPath += `[${seg.element === 'any' ? '' : seg.element}]`
      const element = structuredClone(MINIMAL[docPath])
      if (element === undefined) throw new Error(`reference test: no minimal content for ${docPath}; add it to MINIMAL`)
      cur[seg.name] = [element]
      path.push(0)
      cur = element as Record<string, unknown>
      return
    }
    if (cur[seg.name] === undefined) cur[seg.name] = structuredClone(MINIMAL[docPath] ?? {})
    cur = cur[seg.name] as Record<string, unknown>
  })
  return { raw, path }
}

function withValue (raw: Record<string, unknown>, path: Array<string | number>, value: unknown | typeof ABSENT): Record<string, unknown> {
  const copy = structuredClone(raw)
  let cur = copy as Record<string | number, unknown>
  for (const seg of path.slice(0, -1)) cur = cur[seg] as Record<string | number, unknown>
  const last = path[path.length - 1]!
  if (value === ABSENT) delete cur[last]
  else cur[last] = value
  return copy
}
const ABSENT = Symbol('absent')

function valueAt (v: unknown, path: Array<string | number>): unknown {
  return path.reduce<unknown>((cur, seg) => (cur as Record<string | number, unknown> | undefined)?.[seg], v)
}

const rows = readReference(readFileSync(REFERENCE, 'utf8'))

t.test('the reference documents every key of the schema', async (t) => {
  const documented = new Set(rows.flatMap((r) => perKind(r.key)))
  const missing = schemaKeys(schema, '', []).filter((k) => !documented.has(k))
  t.same(missing, [], 'schema keys with no row in docs/configuration.md')
  t.ok(rows.length > 50, `${rows.length} rows read`)
})

t.test('every documented key exists in the schema, once', async (t) => {
  const seen = new Map<string, number>()
  for (const r of rows) {
    t.ok(resolve(r.key).length > 0, `docs/configuration.md:${r.line}: ${r.key} is a key of the schema${r.key.includes('[]') ? ' (for every provider kind)' : ''}`)
    for (const k of perKind(r.key)) {
      t.notOk(seen.has(k), `docs/configuration.md:${r.line}: ${k} is documented once (also line ${seen.get(k) ?? ''})`)
      seen.set(k, r.line)
    }
  }
})

t.test('documented types are the schema\'s', async (t) => {
  for (const r of rows) {
    for (const { node } of resolve(r.key)) {
      const word = typeWord(node)
      t.ok(r.type.replaceAll('`', '').startsWith(word), `docs/configuration.md:${r.line}: ${r.key} is "${word} ..." (documented: ${r.type})`)
      if (word === 'one of') {
        const allowed = resolve(r.key).flatMap((f) => f.node.enum ?? [f.node.const])
        const listed = [...r.type.matchAll(/`([^`]+)`/g)].map((m) => m[1])
        t.same([...new Set(listed)].sort(), [...new Set(allowed.map(String))].sort(), `docs/configuration.md:${r.line}: ${r.key} lists the values the schema allows`)
      }
    }
  }
})

t.test('documented defaults are the schema\'s', async (t) => {
  for (const r of rows) {
    for (const { kind } of resolve(r.key)) {
      const key = kind === null ? r.key : r.key.replace('providers[]', `providers[${kind}]`)
      const { raw, path } = configAround(key)
      const absent = configSchema.safeParse(withValue(raw, path, ABSENT))
      const where = `docs/configuration.md:${r.line}: ${key}`
      if (r.default === 'required') {
        t.notOk(absent.success, `${where} is required`)
        if (!absent.success) t.ok(absent.error.issues.some((i) => i.path.join('.') === path.join('.')), `${where}: leaving it out is reported at the key (${absent.error.issues[0]?.path.join('.')})`)
        continue
      }
      if (r.default === '—' || r.default === '') {
        // Optional with no value; some keys take part in a rule with others (replica: command or url), so leaving one out may fail there.
        if (absent.success) t.equal(valueAt(absent.data, path), undefined, `${where} has no default`)
        else t.notOk(absent.error.issues.some((i) => i.path.join('.') === path.join('.')), `${where} is optional`)
        continue
      }
      const literal = /^`([^`]+)`$/.exec(r.default)
      if (literal === null) {
        t.ok(/^\*[^*]+\*$/.test(r.default), `${where}: a default is required, —, \`a value\` or *words* (got ${r.default})`)
        t.ok(absent.success, `${where}: a computed default means the key may be left out`)
        continue
      }
      t.ok(absent.success, `${where} may be left out`)
      const given = configSchema.safeParse(withValue(raw, path, parseYamlValue(literal[1]!)))
      t.ok(given.success, `${where}: the documented default ${literal[1]} is a valid value${given.success ? '' : ': ' + given.error.issues[0]?.message}`)
      if (absent.success && given.success) t.same(absent.data, given.data, `${where}: absent is the same as ${literal[1]}`)
    }
  }
})

t.test('the reader can check the test: a wrong row is caught', async (t) => {
  // The checks above on a doctored reference: each kind of mistake fails.
  const doctored = readReference([
    '| key | type | default | meaning |', '| --- | --- | --- | --- |',
    '| `mesh.heartbeat_ms` | integer | `900` | wrong default |',
    '| `mesh.hartbeat_ms` | integer | `1000` | misspelt |',
    '| `providers[].hosts[].ip` | string | required | ssh only, claimed for all |',
    '| `burst.mode` | one of `manual` | `manual` | a value missing |'
  ].join('\n'))
  const [wrongDefault, misspelt, notEveryKind, missingValue] = doctored
  const { raw, path } = configAround(wrongDefault!.key)
  t.notSame(configSchema.parse(withValue(raw, path, ABSENT)), configSchema.parse(withValue(raw, path, 900)), 'a wrong default differs')
  t.same(resolve(misspelt!.key), [], 'a misspelt key resolves to nothing')
  t.same(resolve(notEveryKind!.key), [], 'a kind-specific key documented for every kind resolves to nothing')
  t.not(resolve(missingValue!.key)[0]!.node.enum!.length, 1, 'an incomplete list of values differs from the enum')
})
