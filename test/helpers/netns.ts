/**
 * Separate hosts on one machine (partition tests, SSH pool hosts, the fake
 * EC2's instances): network namespaces joined by a bridge (each host an
 * `eth0` with 10.<net>.0.<i>/24, the test itself .254), cut off and healed
 * by taking its bridge port down and up. Needs root and iproute2;
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

/** A 10.x.0.0/24 that no interface or route of this machine uses (tests side by side each get their own). */
function freeNet (): number {
  const used = spawnSync('ip', ['-4', '-o', 'addr']).stdout.toString() + spawnSync('ip', ['-4', 'route']).stdout.toString()
  for (let i = 0; i < 150; i++) {
    const net = 100 + ((process.pid + nets + i) % 150)
    if (!used.includes(`10.${net}.0.`)) return net
  }
  throw new Error('no free 10.100-249.0.0/24 for a test LAN')
}

export class Lan {
  readonly hosts: Host[] = []
  /** The test's own address (root namespace) on the bridge: hosts reach it, and it reaches every host. */
  readonly hostIp: string
  private readonly bridge: string
  private readonly tag: string
  private readonly net: number
  private readonly prefix: string
  private added = 0

  /**
   * `count` hosts now (more with addHost). `t` removes everything at its
   * teardown; without one the caller calls destroy(). Namespaces are named
   * `<prefix><tag>-<n>`.
   */
  constructor (t: Teardown | null, count: number, opts: { prefix?: string } = {}) {
    // Short names: interface names are limited to 15 characters.
    this.tag = `${process.pid.toString(36)}${(nets++).toString(36)}`
    this.net = freeNet()
    this.prefix = opts.prefix ?? 'mn'
    this.bridge = `mb${this.tag}`
    this.hostIp = `10.${this.net}.0.254`
    t?.teardown(() => { this.destroy() })
    ip('link', 'add', this.bridge, 'type', 'bridge')
    ip('link', 'set', this.bridge, 'up')
    ip('addr', 'add', `${this.hostIp}/24`, 'dev', this.bridge)
    for (let i = 1; i <= count; i++) this.addHost()
  }

  addHost (): Host {
    const i = ++this.added
    if (i > 253) throw new Error('a test LAN holds at most 253 hosts')
    const ns = `${this.prefix}${this.tag}-${i}`
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

  /** Takes a host off the LAN for good: whatever still runs in it is killed, its namespace and port go. */
  removeHost (h: Host): void {
    for (const pid of pidsIn(h.ns)) { try { process.kill(pid, 'SIGKILL') } catch {} }
    spawnSync('ip', ['netns', 'del', h.ns])
    spawnSync('ip', ['link', 'del', h.port])
    const at = this.hosts.indexOf(h)
    if (at >= 0) this.hosts.splice(at, 1)
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
    for (const h of [...this.hosts]) this.removeHost(h)
    spawnSync('ip', ['link', 'del', this.bridge])
  }
}

/** Pids of every process in a network namespace. */
export function pidsIn (ns: string): number[] {
  return spawnSync('ip', ['netns', 'pids', ns]).stdout?.toString().split('\n').filter(Boolean).map(Number) ?? []
}
