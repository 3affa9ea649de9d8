/**
 * Real meshd daemons for end-to-end tests, built by the local cluster
 * builder (daemon/localmesh/cluster.ts): each is a `bin/meshd start` process
 * with its own state dir, admin socket and OS-chosen ports (mesh and HTTP
 * listen on port 0; the actual ones come from the daemon's `info`), so tests
 * run side by side. Every process group is killed at teardown, also when the
 * test fails. Test defaults: cluster `test`, log level debug, heartbeat 1 s.
 */
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { MESHD_BIN, type LogLine, type MeshdProcess } from '../../daemon/localmesh/meshd-process.ts'
import { LocalCluster, type Topology } from '../../daemon/localmesh/cluster.ts'
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

/** A local cluster in the test's directory whose every daemon is killed at teardown. */
export function testCluster (t: Teardown, root: string, swarmKeyFile: string): LocalCluster {
  const c = new LocalCluster({ dir: root, swarmKeyFile, cluster: 'test', logLevel: 'debug', heartbeatMs: 1000 })
  t.teardown(() => { c.kill() })
  return c
}

export class DaemonProcess {
  readonly spec: DaemonSpec
  readonly dir: string
  readonly configPath: string
  readonly socket: string
  readonly process: MeshdProcess

  constructor (spec: DaemonSpec, process: MeshdProcess) {
    this.spec = spec
    this.process = process
    this.configPath = process.init.configPath
    this.dir = dirname(this.configPath)
    this.socket = process.init.socket
  }

  /** Writes the config and starts the daemon; resolves once its admin socket answers. */
  static async start (t: Teardown, root: string, spec: DaemonSpec): Promise<DaemonProcess> {
    const p = await testCluster(t, root, spec.swarmKeyFile).start(spec)
    return new DaemonProcess(spec, p)
  }

  /** Starts the daemon again from the same state dir and config (after a kill), with `args` (e.g. `--reset-state`). */
  async restart (args: string[] = []): Promise<void> {
    await this.process.start(args)
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

/** Starts daemons one after another, each joined as it comes up: to the one before it (chain) or to the first (star). */
export async function startJoined (t: Teardown, root: string, specs: DaemonSpec[], join: Topology): Promise<DaemonProcess[]> {
  const c = testCluster(t, root, specs[0]!.swarmKeyFile)
  const nodes = await c.startAll(specs, { join })
  return nodes.map((p, i) => new DaemonProcess(specs[i]!, p))
}

/** Starts `n` daemons named `<prefix>-1` … in a chain, each joined only to the one before it. */
export async function startChain (t: Teardown, root: string, n: number, spec: Omit<DaemonSpec, 'name' | 'prefix'> & { prefix?: string }): Promise<DaemonProcess[]> {
  const { prefix, ...common } = spec
  return startJoined(t, root, Array.from({ length: n }, (_, i) => ({ ...common, name: `${prefix ?? 'node'}-${i + 1}` })), 'chain')
}
