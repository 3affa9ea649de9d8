/**
 * Reading what the metrics tests compare: a scrape's metric families (from
 * its `# TYPE` lines), the metric names a PromQL expression selects (the
 * dashboard's queries), and the series docs/metrics.md lists.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parsePrometheusText, type Sample } from '../../daemon/replica/prom-text.ts'

export const REPO = join(import.meta.dirname, '../..')

/** name → type, from the `# TYPE` lines of a scrape. */
export function families (text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!)
  return out
}

export function samples (text: string): Sample[] {
  return parsePrometheusText(text).samples
}

/** The family a sample name belongs to (a histogram's `_bucket`, `_sum`, `_count` are its own). */
export function familyOf (name: string, fams: ReadonlyMap<string, string>): string | undefined {
  if (fams.has(name)) return name
  const m = /^(.*)_(bucket|sum|count)$/.exec(name)
  if (m !== null && (fams.get(m[1]!) === 'histogram' || fams.get(m[1]!) === 'summary')) return m[1]
  return undefined
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan'])

/**
 * The metric names a PromQL expression selects: identifiers that are not
 * functions (followed by `(`), keywords, label names inside `{}` or a
 * grouping clause, strings, durations or Grafana variables.
 */
export function promqlMetricNames (expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ') // Grafana variables
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // grouping labels
    .replace(/(?<![A-Za-z0-9_:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])*/g, ' ') // numbers and durations (offset 5m, 1h30m)
  const out = new Set<string>()
  for (const m of s.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] !== undefined) continue // a function
    if (PROMQL_WORDS.has(m[1]!.toLowerCase())) continue
    out.add(m[1]!)
  }
  return [...out]
}

/** Every metric name the dashboard's queries select. */
export function dashboardMetricNames (): { names: string[], exprs: number } {
  const doc = JSON.parse(readFileSync(join(REPO, 'contrib/grafana/meshd.json'), 'utf8')) as unknown
  const exprs: string[] = []
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(walk); return }
    if (v === null || typeof v !== 'object') return
    for (const [k, x] of Object.entries(v)) {
      if (k === 'expr' && typeof x === 'string') exprs.push(x)
      else walk(x)
    }
  }
  walk(doc)
  return { names: [...new Set(exprs.flatMap(promqlMetricNames))].sort(), exprs: exprs.length }
}

/** The series docs/metrics.md lists in its tables: name → type. */
export function documentedSeries (): Map<string, string> {
  const md = readFileSync(join(REPO, 'docs/metrics.md'), 'utf8')
  const out = new Map<string, string>()
  for (const m of md.matchAll(/^\| `(meshd_[a-z0-9_]+)` \| (counter|gauge|histogram|summary) \|/gm)) out.set(m[1]!, m[2]!)
  return out
}
