/**
 * Real meshd daemons for end-to-end tests: each is a `bin/meshd start`
 * process (daemon/localmesh/meshd-process.ts) with its own state dir, admin
 * socket and OS-chosen ports (mesh and HTTP listen on port 0; the actual
 * ones come from the daemon's `info`), so tests run side by side. Every
 * process group is killed at teardown, also when the test fails.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MeshdProcess, MESHD_BIN, type LogLine } from '../../daemon/localmesh/meshd-process.ts'
import type { AdminMethod } from '../../daemon/admin/protocol.ts'
import type { StatusDocument } from '../../daemon/status.ts'
import { generateSwarmKey } from '../../mesh/swarm-key.ts'
import type { Teardown } from './tmp.ts'

export const MESHD = MESHD_BIN
export const REPO = join(import.meta.dirname, '../..')

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
  /** Run under this command (e.g. `ip netns exec <ns>`), listening on `host`. */
  prefix?: string[]
  host?: string
}

export class DaemonProcess {
  readonly spec: DaemonSpec
  readonly dir: string
  readonly configPath: string
  readonly socket: string
  readonly process: MeshdProcess

  private constructor (root: string, spec: DaemonSpec) {
    this.spec = spec
    this.dir = join(root, spec.name)
    this.configPath = join(this.dir, 'meshd.yaml')
    this.socket = join(this.dir, 'admin.sock')
    this.process = new MeshdProcess({ name: spec.name, configPath: this.configPath, socket: this.socket, env: spec.env, ...(spec.prefix !== undefined ? { prefix: spec.prefix } : {}) })
  }

  /** Writes the config and starts the daemon; resolves once its admin socket answers. */
  static async start (t: Teardown, root: string, spec: DaemonSpec): Promise<DaemonProcess> {
    const d = new DaemonProcess(root, spec)
    mkdirSync(d.dir, { recursive: true })
    const config = {
      cluster: spec.cluster ?? 'test',
      node_name: spec.name,
      state_dir: join(d.dir, 'state'),
      swarm_key_file: spec.swarmKeyFile,
      log: { level: 'debug' },
      mesh: { listen: [`/ip4/${spec.host ?? '127.0.0.1'}/tcp/0`], heartbeat_ms: spec.heartbeatMs ?? 1000 },
      http: { listen: `${spec.host ?? '127.0.0.1'}:0` },
      admin: { socket: d.socket },
      ...spec.config
    }
    writeFileSync(d.configPath, JSON.stringify(config, null, 2))
    t.teardown(() => { d.destroy() })
    await d.process.start()
    return d
  }

  /** Starts the daemon again from the same state dir and config (after a kill). */
  async restart (): Promise<void> {
    await this.process.start()
  }

  get peerId (): string { return this.process.info!.peer }
  get addrs (): string[] { return this.process.info!.addrs }
  get httpPort (): number { return Number(this.process.info!.http.split(':').pop()) }
  get url (): string { return `http://${this.spec.host ?? '127.0.0.1'}:${this.httpPort}` }
  get joinAddr (): string { return this.process.joinAddr }
  get pid (): number { return this.process.pid! }
  get logs (): LogLine[] { return this.process.logs }
  get running (): boolean { return this.process.running }

  kill (signal: NodeJS.Signals): void { this.process.signal(signal) }
  exited (): Promise<{ code: number | null, signal: NodeJS.Signals | null }> { return this.process.exited() }
  call (method: AdminMethod, params: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> { return this.process.call(method, params, timeoutMs) }
  status (): Promise<StatusDocument> { return this.process.status() }

  /** State of a member as this daemon sees it, or undefined if not listed. */
  async stateOf (peerId: string): Promise<string | undefined> {
    return (await this.status()).members.find((m) => m.id === peerId)?.state
  }

  async metricsText (): Promise<string> {
    const res = await fetch(`${this.url}/metrics`)
    return res.text()
  }

  /** Sum of a metric's samples whose labels include `labels`. */
  async metric (name: string, labels: Record<string, string> = {}): Promise<number> {
    return sumMetric(await this.metricsText(), name, labels)
  }

  destroy (): void { this.process.killGroup() }
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
