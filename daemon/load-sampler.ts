/**
 * CPU and memory use of this host for the heartbeat (systeminformation).
 * Sampled on its own timer and cached, so building a heartbeat never waits
 * on /proc.
 */
// Only the two parts used: systeminformation's index loads all of its ~20
// (USB, Wi-Fi, Docker, printers, …), memory a daemon at rest holds for nothing.
import { currentLoad } from 'systeminformation/lib/cpu.js'
import { mem as memory } from 'systeminformation/lib/memory.js'
import { cpus, freemem, loadavg, totalmem } from 'node:os'
import type { Startable } from '../mesh/startable.ts'

export interface HostLoad { cpu: number, mem: number }

export class LoadSampler implements Startable {
  private current: HostLoad = { cpu: 0, mem: 0 }
  private timer: NodeJS.Timeout | undefined
  private readonly everyMs: number

  constructor (everyMs: number) {
    this.everyMs = everyMs
  }

  get (): HostLoad {
    return this.current
  }

  /**
   * The first reading of systeminformation takes ~0.5 s and is not awaited;
   * until it lands, the first heartbeats carry a rough reading from node:os
   * (load average per core, memory not free) rather than zeros.
   */
  start (): void {
    const total = totalmem()
    this.current = { cpu: clamp01((loadavg()[0] ?? 0) / Math.max(1, cpus().length)), mem: clamp01(total > 0 ? 1 - freemem() / total : 0) }
    void this.sample()
    this.timer = setInterval(() => { void this.sample() }, this.everyMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  private async sample (): Promise<void> {
    try {
      const [cpu, mem] = await Promise.all([currentLoad(), memory()])
      this.current = {
        cpu: clamp01(cpu.currentLoad / 100),
        mem: clamp01(mem.total > 0 ? mem.active / mem.total : 0)
      }
    } catch {
      // Keep the last sample; a failed read of /proc is not worth a crash.
    }
  }
}

function clamp01 (x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0
}
