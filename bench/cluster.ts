/** Real meshd daemons for the benchmarks: one temp dir, one swarm key, loopback ports. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MeshdProcess } from '../daemon/localmesh/meshd-process.ts'
import { generateSwarmKey } from '../mesh/swarm-key.ts'

export class BenchCluster {
  readonly dir: string
  readonly key: string
  /** Every daemon started and not yet stopped. */
  readonly live = new Set<MeshdProcess>()

  constructor (label: string) {
    this.dir = mkdtempSync(join(tmpdir(), `meshd-bench-${label}-`))
    this.key = join(this.dir, 'swarm.key')
    writeFileSync(this.key, generateSwarmKey(), { mode: 0o600 })
  }

  /** Writes a node's config (`extra` keys replace the defaults at the top level) and starts it. */
  async start (name: string, extra: Record<string, unknown> = {}): Promise<MeshdProcess> {
    const d = join(this.dir, name)
    mkdirSync(d)
    const socket = join(d, 'admin.sock')
    writeFileSync(join(d, 'meshd.yaml'), JSON.stringify({
      cluster: 'bench', node_name: name, state_dir: join(d, 'state'), swarm_key_file: this.key, log: { level: 'warn' },
      mesh: { listen: ['/ip4/127.0.0.1/tcp/0'] }, http: { listen: '127.0.0.1:0' }, admin: { socket }, ...extra
    }))
    const p = new MeshdProcess({ name, configPath: join(d, 'meshd.yaml'), socket, logFile: join(d, 'log') })
    this.live.add(p)
    await p.start()
    return p
  }

  /** SIGTERM every daemon (they drain), then remove the directory. */
  async stop (): Promise<void> {
    await Promise.all([...this.live].map(async (p) => { await p.stop(5000); this.live.delete(p) }))
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** Last resort on exit: kill every daemon's process group. */
  kill (): void {
    for (const p of this.live) p.killGroup()
  }
}
