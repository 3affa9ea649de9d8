/**
 * A `meshd start` child process on this machine, attached to us (output
 * piped here, its own process group so a kill takes its replica too): what
 * `meshd demo`, the benchmarks and the end-to-end tests run. (Burst nodes of
 * the local provider are detached instead, to outlive the daemon that
 * launched them: providers/local/provider.ts spawns those itself.)
 *
 * Readiness is read from the daemon itself: once its admin socket answers
 * `info`, every service is up (the socket starts last).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { callDaemon } from '../admin/client.ts'
import type { AdminMethod } from '../admin/protocol.ts'
import type { StatusDocument } from '../status.ts'
import { MESHD_ROOT } from '../own-files.ts'

export const MESHD_BIN = join(MESHD_ROOT, 'bin', 'meshd')

export interface DaemonInfo {
  peer: string
  name: string
  addrs: string[]
  http: string
  pid: number
  version: string
}

export interface LogLine { level: string, msg: string, [k: string]: unknown }

export interface MeshdProcessInit {
  name: string
  configPath: string
  /** The daemon's admin socket (from its config). */
  socket: string
  /** The meshd executable (default: this copy's bin/meshd; a test of an unpacked bundle passes its own). */
  bin?: string
  /** A file that also gets the output (lines are kept in memory either way). */
  logFile?: string
  env?: Record<string, string | undefined>
  /** A command to run meshd under, e.g. `ip netns exec <ns>` (tests of separate hosts). */
  prefix?: string[]
  startTimeoutMs?: number
  onLog?: (line: LogLine) => void
}

export class MeshdProcess {
  readonly init: MeshdProcessInit
  proc: ChildProcess | undefined
  info: DaemonInfo | undefined
  logs: LogLine[] = []
  stderr = ''
  private exit: Promise<{ code: number | null, signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null })

  constructor (init: MeshdProcessInit) {
    this.init = init
  }

  /** Starts the daemon (with `args` after `start --config FILE`, e.g. `--reset-state`) and resolves with its identity once its admin socket answers. */
  async start (args: string[] = []): Promise<DaemonInfo> {
    this.logs = []
    this.stderr = ''
    this.info = undefined
    const prefix = this.init.prefix ?? []
    const argv = [...prefix, this.init.bin ?? MESHD_BIN, 'start', '--config', this.init.configPath, ...args]
    const proc = spawn(argv[0]!, argv.slice(1), {
      // Its own process group, so that killing the group also takes its
      // replica. Not unref'd, and its output is piped to us.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.init.env }
    })
    this.proc = proc
    this.exit = new Promise((resolve) => { proc.once('exit', (code, signal) => { resolve({ code, signal }) }) })
    if (this.init.logFile !== undefined) {
      const out = createWriteStream(this.init.logFile, { flags: 'a', mode: 0o640 })
      proc.stdout!.pipe(out)
      proc.stderr!.pipe(out)
    }
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s })
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let entry: LogLine
      try { entry = JSON.parse(line) as LogLine } catch { return }
      this.logs.push(entry)
      if (this.logs.length > 5000) this.logs.splice(0, 1000)
      this.init.onLog?.(entry)
    })
    this.info = await this.waitReady()
    return this.info
  }

  private async waitReady (): Promise<DaemonInfo> {
    const deadline = Date.now() + (this.init.startTimeoutMs ?? 30_000)
    let exited: { code: number | null, signal: NodeJS.Signals | null } | null = null
    void this.exit.then((e) => { exited = e })
    for (;;) {
      if (exited !== null) {
        const e = exited as { code: number | null, signal: NodeJS.Signals | null }
        throw new Error(`${this.init.name} exited (code ${e.code}, signal ${e.signal}) before it was ready${this.stderr !== '' ? `: ${this.stderr.trim()}` : ''}`)
      }
      try {
        return await callDaemon(this.init.socket, 'info', {}, { timeoutMs: 2000 }) as DaemonInfo
      } catch {
        if (Date.now() > deadline) throw new Error(`${this.init.name} was not ready within ${this.init.startTimeoutMs ?? 30_000} ms${this.stderr !== '' ? `; stderr: ${this.stderr.trim()}` : ''}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }

  get pid (): number | undefined {
    return this.proc?.pid
  }

  get running (): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** An address others can `join` through. */
  get joinAddr (): string {
    const info = this.info
    if (info === undefined) throw new Error(`${this.init.name} is not started`)
    const a = info.addrs.find((x) => x.includes('/tcp/'))
    if (a === undefined) throw new Error(`${this.init.name} has no tcp address`)
    return a.includes('/p2p/') ? a : `${a}/p2p/${info.peer}`
  }

  signal (sig: NodeJS.Signals): void {
    if (this.proc?.pid === undefined) return
    try { process.kill(this.proc.pid, sig) } catch {}
  }

  exited (): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
    return this.exit
  }

  /** SIGTERM and wait (the daemon drains); SIGKILL the group after `graceMs`. */
  async stop (graceMs = 15_000): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
    if (!this.running) return this.exit
    this.signal('SIGTERM')
    const timer = setTimeout(() => { this.killGroup() }, graceMs)
    const e = await this.exit
    clearTimeout(timer)
    return e
  }

  /** Kills the whole process group, also a SIGSTOPped one. */
  killGroup (): void {
    const pid = this.proc?.pid
    if (pid === undefined) return
    try { process.kill(-pid, 'SIGKILL') } catch {}
    try { process.kill(-pid, 'SIGCONT') } catch {}
  }

  call (method: AdminMethod, params: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> {
    return callDaemon(this.init.socket, method, params, { timeoutMs })
  }

  status (): Promise<StatusDocument> {
    return this.call('status') as Promise<StatusDocument>
  }
}
