/**
 * Plumbing for the supervisor tests: a pino logger that keeps its lines in
 * memory, configs through the real schema, supervisors that are stopped and
 * whose process groups are SIGKILLed at teardown (also when the test fails),
 * small HTTP servers as engines, and free ports.
 */
import { Writable } from 'node:stream'
import { createServer } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino, type Logger } from 'pino'
import { replicaSchema, type ReplicaConfig } from '../../daemon/config/schema.ts'
import { ReplicaSupervisor, type ReplicaSupervisorInit, type ReplicaSupervisorEvents } from '../../daemon/replica/supervisor.ts'
import { groupMembers } from '../../daemon/replica/process.ts'
import type { Teardown } from '../helpers/tmp.ts'

export interface LogLine { level: number, msg: string, [k: string]: unknown }

export interface MemoryLog { log: Logger, lines: LogLine[] }

export function memoryLog (): MemoryLog {
  const lines: LogLine[] = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as LogLine)
      cb()
    }
  })
  return { log: pino({ level: 'trace' }, sink), lines }
}

/** A `replica:` section as the config loader would hand it over. */
export function replicaConfig (raw: Record<string, unknown>): ReplicaConfig {
  return replicaSchema.parse(raw)
}

export interface Supervised {
  sup: ReplicaSupervisor
  logs: LogLine[]
  /** Every event in order, with its arguments. */
  events: Array<{ name: keyof ReplicaSupervisorEvents, args: unknown[], at: number }>
}

/** A supervisor that is stopped at teardown; every process group it started is SIGKILLed too. */
export function supervise (t: Teardown, init: Omit<ReplicaSupervisorInit, 'nodeName'> & { nodeName?: string }): Supervised {
  const { log, lines } = memoryLog()
  const sup = new ReplicaSupervisor({ nodeName: 'test-node', ...init }, { log })
  const events: Supervised['events'] = []
  for (const name of ['replica:ready', 'replica:unready', 'replica:exit'] as const) {
    sup.on(name, (...args: unknown[]) => { events.push({ name, args, at: performance.now() }) })
  }
  t.teardown(async () => {
    await sup.stop(0)
    for (const pid of enginePids(lines)) {
      try { process.kill(-pid, 'SIGKILL') } catch {}
    }
  })
  return { sup, logs: lines, events }
}

/** Every engine process (group) the supervisor logged as started. */
export function enginePids (lines: LogLine[]): number[] {
  return lines.filter((l) => l.msg === 'replica process started' && typeof l.enginePid === 'number').map((l) => l.enginePid as number)
}

/** Living processes (no zombies) left in a process group. */
export { groupMembers }

/** A port that was free a moment ago (for engines that must be told their port up front). */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => { resolve(typeof addr === 'object' && addr !== null ? addr.port : 0) })
    })
  })
}

/**
 * A tiny engine as a Node script, for `command` replicas. It listens on
 * $MESHD_REPLICA_PORT and is steered by files in its directory, so a test
 * changes its behaviour while it runs:
 *
 * - `/health` (and any probe path) answers 200 when `healthy` exists, 503
 *   otherwise; hangs (never answers) while `hang` exists.
 * - every request to the probe path is appended to `seen.jsonl` as
 *   {method, url, contentType, body}.
 * - `/metrics` answers vLLM's gauges when `metrics` exists (its content is the body).
 * - `/exit?code=N` prints a last line to stderr and exits N.
 * - SIGTERM: exits 0 after `drain-ms` (file content, default 0) unless `ignore-term` exists.
 * - at start it prints a JSON log line and a text line to stdout, and once a
 *   line of 100 000 characters to stderr when `long-line` exists.
 */
export const ENGINE_SCRIPT = String.raw`
import { createServer } from 'node:http'
import { existsSync, readFileSync, appendFileSync } from 'node:fs'
import { join } from 'node:path'
const dir = process.argv[2]
const f = (name) => join(dir, name)
const port = Number(process.env.MESHD_REPLICA_PORT)
const server = createServer((req, res) => {
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (c) => { body += c })
  req.on('end', () => {
    const url = new URL(req.url, 'http://x')
    if (url.pathname === '/exit') {
      process.stderr.write('fatal: asked to exit with code ' + url.searchParams.get('code') + '\n')
      res.end('bye', () => process.exit(Number(url.searchParams.get('code'))))
      return
    }
    if (url.pathname === '/metrics') {
      if (!existsSync(f('metrics'))) { res.statusCode = 404; res.end('no metrics'); return }
      res.setHeader('content-type', 'text/plain; version=0.0.4')
      res.end(readFileSync(f('metrics'), 'utf8'))
      return
    }
    if (url.pathname === '/v1/models') { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ object: 'list', data: [{ id: 'script', object: 'model' }] })); return }
    appendFileSync(f('seen.jsonl'), JSON.stringify({ method: req.method, url: req.url, contentType: req.headers['content-type'] ?? null, body }) + '\n')
    if (existsSync(f('hang'))) return
    if (existsSync(f('healthy'))) { res.end('{"status":"ok"}'); return }
    res.statusCode = 503
    res.end('{"status":"loading"}')
  })
})
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ level: 40, msg: 'engine warming up', port }) + '\n')
  process.stdout.write('plain text line from the engine\n')
  if (existsSync(f('long-line'))) process.stderr.write('x'.repeat(100000) + '\n')
})
process.on('SIGTERM', () => {
  if (existsSync(f('ignore-term'))) return
  const ms = existsSync(f('drain-ms')) ? Number(readFileSync(f('drain-ms'), 'utf8')) : 0
  setTimeout(() => process.exit(0), ms)
})
`

/** Writes the engine script into `dir` and returns the command that runs it with this Node. */
export function engineCommand (dir: string): string {
  const script = join(dir, 'engine.mjs')
  writeFileSync(script, ENGINE_SCRIPT)
  return `exec '${process.execPath}' '${script}' '${dir}'`
}

export function touch (dir: string, name: string, content = ''): void {
  writeFileSync(join(dir, name), content)
}
