/**
 * Real meshd daemons for end-to-end tests: each is a `bin/meshd start`
 * process with its own state dir, admin socket and OS-chosen ports (mesh and
 * HTTP listen on port 0; the actual ports are read from the daemon's
 * "meshd started" log line), so tests run side by side. Every process is
 * killed at teardown, also when the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { callDaemon } from '../../daemon/admin/client.ts'
import type { AdminMethod } from '../../daemon/admin/protocol.ts'
import type { StatusDocument } from '../../daemon/status.ts'
import { generateSwarmKey } from '../../mesh/swarm-key.ts'
import type { Teardown } from './tmp.ts'

export const REPO = resolve(import.meta.dirname, '../..')
export const MESHD = join(REPO, 'bin', 'meshd')

export function writeSwarmKey (dir: string, name = 'swarm.key'): string {
  const file = join(dir, name)
  writeFileSync(file, generateSwarmKey(), { mode: 0o600 })
  return file
}

export interface DaemonSpec {
  name: string
  cluster?: string
  swarmKeyFile: string
  heartbeatMs?: number
  /** Merged over the generated config (top-level keys replace). */
  config?: Record<string, unknown>
  env?: Record<string, string>
}

export interface LogLine { level: string, msg: string, [k: string]: unknown }

export class DaemonProcess {
  readonly spec: DaemonSpec
  readonly dir: string
  readonly configPath: string
  readonly socket: string
  proc!: ChildProcess
  peerId = ''
  addrs: string[] = []
  httpPort = 0
  logs: LogLine[] = []
  stderr = ''
  private exit!: Promise<{ code: number | null, signal: NodeJS.Signals | null }>

  private constructor (root: string, spec: DaemonSpec) {
    this.spec = spec
    this.dir = join(root, spec.name)
    this.configPath = join(this.dir, 'meshd.yaml')
    this.socket = join(this.dir, 'admin.sock')
  }

  /** Writes the config and starts the daemon; resolves once it logged "meshd started". */
  static async start (t: Teardown, root: string, spec: DaemonSpec): Promise<DaemonProcess> {
    const d = new DaemonProcess(root, spec)
    mkdirSync(d.dir, { recursive: true })
    const config = {
      cluster: spec.cluster ?? 'test',
      node_name: spec.name,
      state_dir: join(d.dir, 'state'),
      swarm_key_file: spec.swarmKeyFile,
      log: { level: 'debug' },
      mesh: { listen: ['/ip4/127.0.0.1/tcp/0'], heartbeat_ms: spec.heartbeatMs ?? 1000 },
      http: { listen: '127.0.0.1:0' },
      admin: { socket: d.socket },
      ...spec.config
    }
    writeFileSync(d.configPath, JSON.stringify(config, null, 2))
    t.teardown(() => d.destroy())
    await d.launch()
    return d
  }

  /** Starts the daemon again from the same state dir and config (after a kill). */
  async restart (): Promise<void> {
    await this.launch()
  }

  private async launch (): Promise<void> {
    this.logs = []
    this.stderr = ''
    const proc = spawn(MESHD, ['start', '--config', this.configPath], {
      detached: true, // its own process group: teardown kills the replica children too
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.spec.env }
    })
    this.proc = proc
    this.exit = new Promise((resolve) => { proc.once('exit', (code, signal) => { resolve({ code, signal }) }) })
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s })
    const started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${this.spec.name} did not start within 30 s; stderr: ${this.stderr}; last logs: ${JSON.stringify(this.logs.slice(-5))}`)) }, 30_000)
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        let entry: LogLine
        try { entry = JSON.parse(line) as LogLine } catch { return }
        this.logs.push(entry)
        if (entry.msg === 'meshd started') {
          this.peerId = entry.peer as string
          this.addrs = entry.addrs as string[]
          this.httpPort = Number(String(entry.http).split(':').pop())
          clearTimeout(timer)
          resolve()
        }
      })
      void this.exit.then(({ code, signal }) => {
        clearTimeout(timer)
        reject(new Error(`${this.spec.name} exited (code ${code}, signal ${signal}) before starting; stderr: ${this.stderr}`))
      })
    })
    await started
  }

  /** An address others can `join` through. */
  get joinAddr (): string {
    const a = this.addrs.find((x) => x.includes('/tcp/'))
    if (a === undefined) throw new Error(`${this.spec.name} has no tcp address`)
    return a.includes('/p2p/') ? a : `${a}/p2p/${this.peerId}`
  }

  get pid (): number {
    return this.proc.pid!
  }

  kill (signal: NodeJS.Signals): void {
    try { process.kill(this.pid, signal) } catch {}
  }

  exited (): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
    return this.exit
  }

  get running (): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  call (method: AdminMethod, params: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> {
    return callDaemon(this.socket, method, params, { timeoutMs })
  }

  async status (): Promise<StatusDocument> {
    return this.call('status') as Promise<StatusDocument>
  }

  /** State of a member as this daemon sees it, or undefined if not listed. */
  async stateOf (peerId: string): Promise<string | undefined> {
    return (await this.status()).members.find((m) => m.id === peerId)?.state
  }

  async metricsText (): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)
    return res.text()
  }

  /** Sum of a metric's samples whose labels include `labels`. */
  async metric (name: string, labels: Record<string, string> = {}): Promise<number> {
    return sumMetric(await this.metricsText(), name, labels)
  }

  /** Kills the whole process group, also a SIGSTOPped one. */
  destroy (): void {
    if (this.proc?.pid === undefined) return
    try { process.kill(-this.proc.pid, 'SIGKILL') } catch {}
    try { process.kill(-this.proc.pid, 'SIGCONT') } catch {}
  }
}

export function sumMetric (text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (m === null || m[1] !== name) continue
    const labelText = m[2] ?? ''
    if (!Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) continue
    sum += Number(m[3])
  }
  return sum
}

/** Starts daemons one after another, each joined only to the one before it. */
export async function startChain (t: Teardown, root: string, n: number, spec: Omit<DaemonSpec, 'name'> & { prefix?: string }): Promise<DaemonProcess[]> {
  const out: DaemonProcess[] = []
  for (let i = 0; i < n; i++) {
    const d = await DaemonProcess.start(t, root, { ...spec, name: `${spec.prefix ?? 'node'}-${i + 1}` })
    if (i > 0) await d.call('join', { addrs: [out[i - 1]!.joinAddr] }, 15_000)
    out.push(d)
  }
  return out
}
