/**
 * What the `replica:` config asks the supervisor to run, decided without
 * running anything: the simulator, a command of the operator's, or nothing
 * (a server managed elsewhere). Also the rules the config schema cannot see,
 * as a pure check the config loader can call.
 */
import { entryFile } from '../own-files.ts'
import type { ReplicaConfig } from '../config/schema.ts'

/** The simulator's entry, run with the daemon's own Node. */
export const SIM_MAIN = entryFile('sim')

export type Launch =
  /** The built-in simulator; its URL comes from its `{"event":"listening","port":P}` line. */
  | { kind: 'sim', argv: string[], host: string }
  /** An operator's command through `/bin/sh -c`, listening where `url` says. */
  | { kind: 'command', command: string, url: string }
  /** A server managed elsewhere: only probed and scraped. */
  | { kind: 'external', url: string }

export interface ReplicaConfigProblem {
  /** Path under `replica`, e.g. `['url']`. */
  path: Array<string | number>
  message: string
}

/**
 * What is wrong with a validated `replica:` section that the schema does not
 * check; empty when nothing is. For the loader:
 * `for (const p of replicaConfigProblems(r)) ctx.addIssue({ code: 'custom', path: ['replica', ...p.path], message: p.message })`.
 */
export function replicaConfigProblems (r: ReplicaConfig): ReplicaConfigProblem[] {
  const out: ReplicaConfigProblem[] = []
  const sim = r.command === 'sim'
  if (r.command !== undefined && !sim && r.url === undefined) {
    out.push({ path: ['url'], message: 'expected `url` (where the server started by `command` listens, e.g. http://127.0.0.1:9000): meshd probes and forwards to it' })
  }
  if (r.url !== undefined) {
    const u = parseUrl(r.url)
    if (u === null) out.push({ path: ['url'], message: `expected an http(s) URL, got ${JSON.stringify(r.url)}` })
    else if (u.search !== '' || u.hash !== '') out.push({ path: ['url'], message: 'expected a base URL without query or fragment' })
    else if (sim && u.protocol !== 'http:') out.push({ path: ['url'], message: 'the simulator serves plain http' })
    else if (sim && u.pathname !== '/' && u.pathname !== '') out.push({ path: ['url'], message: 'the simulator serves at the root; expected no path' })
  }
  if (sim) {
    r.models.forEach((m, i) => {
      if (m.includes(',')) out.push({ path: ['models', i], message: 'the simulator takes model names without commas' })
    })
  }
  if (!r.readiness_probe.path.startsWith('/')) {
    out.push({ path: ['readiness_probe', 'path'], message: `expected a path starting with "/", got ${JSON.stringify(r.readiness_probe.path)}` })
  }
  if (r.readiness_probe.post_data !== null && r.readiness_probe.post_data !== undefined) {
    try { JSON.stringify(r.readiness_probe.post_data) } catch { out.push({ path: ['readiness_probe', 'post_data'], message: 'expected a JSON value' }) }
  }
  return out
}

/** The launch a valid config asks for. Throws on a config `replicaConfigProblems` rejects. */
export function planLaunch (r: ReplicaConfig, nodeName: string, simArgs: readonly string[] = []): Launch {
  const problems = replicaConfigProblems(r)
  if (problems.length > 0) throw new Error(problems.map((p) => `replica.${p.path.join('.')}: ${p.message}`).join('; '))
  if (r.command === 'sim') {
    const u = r.url !== undefined ? parseUrl(r.url) : null
    const host = u !== null ? u.hostname.replace(/^\[(.*)\]$/, '$1') : '127.0.0.1'
    const port = u !== null && u.port !== '' ? u.port : '0'
    const argv = [
      process.execPath, '--disable-warning=ExperimentalWarning', SIM_MAIN,
      '--host', host,
      '--port', port,
      '--models', r.models.join(','),
      '--slots', String(r.slots),
      '--ttft-ms', String(r.sim.ttft_ms),
      '--tokens-per-second', String(r.sim.tokens_per_second),
      '--max-tokens', String(r.sim.max_tokens),
      '--name', nodeName,
      ...simArgs
    ]
    return { kind: 'sim', argv, host }
  }
  if (r.command !== undefined) return { kind: 'command', command: r.command, url: baseUrl(r.url!) }
  return { kind: 'external', url: baseUrl(r.url!) }
}

/** `http://h:p/` → `http://h:p`; a path prefix is kept without its trailing slash. */
export function baseUrl (url: string): string {
  return url.replace(/\/+$/, '')
}

/** The URL of a server on `host` (an IPv6 literal gets its brackets). */
export function urlFor (host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`
}

function parseUrl (s: string): URL | null {
  try {
    const u = new URL(s)
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : null
  } catch {
    return null
  }
}

/** Quotes one word for `/bin/sh`. */
export function shellQuote (s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}
