/**
 * Separate hosts on one machine, for partition tests: network namespaces
 * joined by a bridge (each host an `eth0` with 10.<net>.0.<i>/24), cut off
 * and healed by taking its bridge port down and up. Needs root and iproute2;
 * everything is removed at teardown, also when the test fails.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import type { Teardown } from './tmp.ts'

export function netnsAvailable (): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)'
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs iproute2 (`ip`)'
  return false
}

export interface Host { name: string, ns: string, ip: string, port: string }

function ip (...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

let nets = 0

export class Lan {
  readonly hosts: Host[] = []
  private readonly bridge: string
  private readonly tag: string
  private readonly net: number

  constructor (t: Teardown, count: number) {
    // Short names: interface names are limited to 15 characters.
    this.tag = `${process.pid.toString(36)}${(nets++).toString(36)}`
    this.net = 100 + ((process.pid + nets) % 100)
    this.bridge = `mb${this.tag}`
    t.teardown(() => { this.destroy() })
    ip('link', 'add', this.bridge, 'type', 'bridge')
    ip('link', 'set', this.bridge, 'up')
    // The test itself (root namespace) reaches every host through the bridge.
    ip('addr', 'add', `10.${this.net}.0.254/24`, 'dev', this.bridge)
    for (let i = 1; i <= count; i++) this.addHost()
  }

  addHost (): Host {
    const i = this.hosts.length + 1
    const ns = `mn${this.tag}-${i}`
    const port = `mv${this.tag}-${i}`
    ip('netns', 'add', ns)
    ip('link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
    ip('link', 'set', port, 'master', this.bridge, 'up')
    const addr = `10.${this.net}.0.${i}`
    ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
    ip('-n', ns, 'link', 'set', 'eth0', 'up')
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    const h = { name: `h${i}`, ns, ip: addr, port }
    this.hosts.push(h)
    return h
  }

  /** Cuts a host off the LAN (its cable pulled): no packets in or out, no connection reset. */
  cut (h: Host): void {
    ip('link', 'set', h.port, 'down')
  }

  heal (h: Host): void {
    ip('link', 'set', h.port, 'up')
  }

  /** The command prefix that runs a program inside the host. */
  exec (h: Host): string[] {
    return ['ip', 'netns', 'exec', h.ns]
  }

  destroy (): void {
    for (const h of this.hosts) {
      spawnSync('ip', ['netns', 'pids', h.ns]).stdout?.toString().split('\n').filter(Boolean).forEach((pid) => { try { process.kill(Number(pid), 'SIGKILL') } catch {} })
      spawnSync('ip', ['netns', 'del', h.ns])
      spawnSync('ip', ['link', 'del', h.port])
    }
    spawnSync('ip', ['link', 'del', this.bridge])
    this.hosts.length = 0
  }
}
