/**
 * What runs behind a fake EC2 instance.
 *
 * `NetnsMachines` (needs root, iproute2, util-linux): each instance is
 *   - a network namespace `ec2f-<tag>-<n>`, a host of a test LAN
 *     (test/helpers/netns.ts: an `eth0` with its private address
 *     10.<net>.0.<n>/24 whose veth peer is on a bridge of the host); the host
 *     has 10.<net>.0.254 on the bridge, where the fake's endpoints
 *     (EC2, SSM, Secrets Manager, files) and every instance's IMDS listen, and
 *     where test daemons on the host may listen for the instances to reach;
 *   - a private mount namespace, held by a keeper process (`sleep infinity`),
 *     in which /opt, /etc and /var/lib are overlays whose writes go to the
 *     instance's own tmpfs, with /opt/meshd, /etc/meshd and /var/lib/meshd
 *     fresh empty tmpfs mounts: the user data's absolute paths work, nothing
 *     is written to the host, and instances do not see each other's files;
 *   - its own IMDS (test/helpers/imds.ts) with its id, type, zone, region,
 *     life cycle, private address, user data and, when the launch template
 *     enables InstanceMetadataTags, its tags;
 *   - its user data run once by `sh` inside both namespaces with
 *     AWS_EC2_METADATA_SERVICE_ENDPOINT at its IMDS (and the SSM / Secrets
 *     Manager endpoints, dummy credentials for the instance role), its output
 *     kept as the console output.
 * Stopping: SIGTERM to every process in the namespace, SIGKILL after the
 * grace, then the namespace, veth and IMDS go (the mount namespace dies with
 * its last process).
 *
 * `BareMachines`: no namespaces and nothing run, only an IMDS per instance on
 * loopback: for tests of the API surface, on any machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startImds, type Imds } from '../imds.ts'
import { waitFor } from '../../../daemon/localmesh/poll.ts'
import { Lan, pidsIn, type Host } from '../netns.ts'
import type { InstanceRecord, Machines } from './ec2.ts'

export function netnsMachinesAvailable (): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network and mount namespaces)'
  for (const [cmd, arg] of [['ip', '-V'], ['unshare', '--version'], ['nsenter', '--version']] as const) {
    if (spawnSync(cmd, [arg]).status !== 0) return `needs ${cmd}`
  }
  return false
}

interface Box {
  imds: Imds | null
  /** Its place on the LAN (namespace, address, bridge port). */
  host?: Host
  keeper?: ChildProcess
  userData?: Promise<number | null>
}

export interface MachineEnv {
  /** Extra environment for the user data (e.g. AWS_ENDPOINT_URL_SSM). */
  env: Record<string, string>
}

/** IMDS per instance on loopback; nothing runs. */
export class BareMachines implements Machines {
  protected readonly boxes = new Map<string, Box>()
  private n = 0
  protected readonly host: string
  constructor (host = '127.0.0.1') {
    this.host = host
  }

  start (inst: InstanceRecord): { privateIp: string, ready: Promise<void> } {
    const n = ++this.n
    const privateIp = `10.255.${n >> 8}.${n & 255}`
    const box: Box = { imds: null }
    this.boxes.set(inst.id, box)
    return { privateIp, ready: this.imds(inst, box, privateIp, this.host) }
  }

  protected async imds (inst: InstanceRecord, box: Box, privateIp: string, host: string): Promise<void> {
    box.imds = await startImds({
      instanceId: inst.id,
      instanceType: inst.type,
      region: inst.region,
      zone: inst.zone,
      imageId: inst.imageId,
      localIpv4: privateIp,
      lifeCycle: inst.market,
      launchedAt: inst.launchTime,
      userData: inst.userData,
      ...(inst.metadataTags ? { tags: inst.tags } : {})
    }, { host })
  }

  imdsOf (id: string): Imds | null { return this.boxes.get(id)?.imds ?? null }

  async stop (id: string): Promise<void> {
    const box = this.boxes.get(id)
    this.boxes.delete(id)
    await box?.imds?.close()
  }

  announceInterruption (id: string, at: number): void { this.imdsOf(id)?.announceInterruption(at) }
  announceRebalance (id: string, at?: number): void { this.imdsOf(id)?.announceRebalance(at) }

  async close (): Promise<void> {
    await Promise.all([...this.boxes.keys()].map(async (id) => this.stop(id)))
  }
}

/** The mounts a keeper makes in its private mount namespace, then it sleeps. */
function keeperScript (disk: string): string {
  const lines = ['set -e', `mount -t tmpfs -o mode=0700 ec2f-disk ${disk}`]
  for (const [i, [parent, child]] of ([['/opt', 'meshd'], ['/etc', 'meshd'], ['/var/lib', 'meshd']] as const).entries()) {
    lines.push(`mkdir -p ${disk}/up${i} ${disk}/wk${i}`)
    lines.push(`mount -t overlay ec2f-root -o lowerdir=${parent},upperdir=${disk}/up${i},workdir=${disk}/wk${i} ${parent}`)
    lines.push(`mkdir -p ${parent}/${child}`, `mount -t tmpfs -o mode=0755 ec2f-${child} ${parent}/${child}`)
  }
  lines.push('echo ready', 'exec sleep infinity')
  return lines.join('\n')
}

export class NetnsMachines extends BareMachines {
  /** The host's address on the instances' bridge: endpoints listen here. */
  readonly hostIp: string
  private readonly lan: Lan
  private readonly root: string
  private readonly runEnv: MachineEnv
  private readonly graceMs: number

  constructor (root: string, runEnv: MachineEnv, graceMs: number) {
    // close() removes it (the fake's own teardown calls close).
    const lan = new Lan(null, 0, { prefix: 'ec2f-' })
    super(lan.hostIp)
    this.lan = lan
    this.hostIp = lan.hostIp
    this.root = root
    this.runEnv = runEnv
    this.graceMs = graceMs
  }

  /** The command prefix that runs a program inside the instance (both namespaces). */
  inside (id: string): string[] {
    const pid = this.boxes.get(id)?.keeper?.pid
    if (pid === undefined) throw new Error(`fake EC2: instance ${id} is not running`)
    return ['nsenter', '-t', String(pid), '-m', '-n', '--']
  }

  /** Pids of every process in the instance's network namespace. */
  pids (id: string): number[] {
    const ns = this.boxes.get(id)?.host?.ns
    return ns === undefined ? [] : pidsIn(ns)
  }

  /** The user data's exit status once it ended (null: killed). */
  userDataExit (id: string): Promise<number | null> | undefined { return this.boxes.get(id)?.userData }

  consoleOutput (id: string): string {
    try { return readFileSync(join(this.root, id, 'console.log'), 'utf8') } catch { return '' }
  }

  override start (inst: InstanceRecord): { privateIp: string, ready: Promise<void> } {
    const host = this.lan.addHost()
    const privateIp = host.ip
    const box: Box = { imds: null, host }
    this.boxes.set(inst.id, box)
    const booted = this.boot(inst, box, privateIp)
    // Known at once (a test may wait for it before the machine is up); null when the machine never came up.
    box.userData = booted.then(async (b) => b.exit, () => null)
    return { privateIp, ready: booted.then(() => {}) }
  }

  /** Sets the machine up and starts its user data; resolves (when it runs) to the user data's exit. */
  private async boot (inst: InstanceRecord, box: Box, privateIp: string): Promise<{ exit: Promise<number | null> }> {
    await this.imds(inst, box, privateIp, this.hostIp)
    const dir = join(this.root, inst.id)
    mkdirSync(join(dir, 'disk'), { recursive: true })
    const keeper = spawn('ip', ['netns', 'exec', box.host!.ns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', keeperScript(join(dir, 'disk'))], { stdio: ['ignore', 'pipe', 'pipe'] })
    box.keeper = keeper
    let err = ''
    keeper.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s })
    await new Promise<void>((resolve, reject) => {
      keeper.stdout!.setEncoding('utf8').on('data', (s: string) => { if (s.includes('ready')) resolve() })
      keeper.on('exit', (code) => { reject(new Error(`the instance's namespaces could not be set up (exit ${code}): ${err.trim()}`)) })
    })
    // The user data, run once, as cloud-init does; its output is the console output.
    const file = join(dir, 'user-data')
    writeFileSync(file, inst.userData, { mode: 0o700 })
    const out = openSync(join(dir, 'console.log'), 'a')
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/root',
      LANG: 'C.UTF-8',
      AWS_EC2_METADATA_SERVICE_ENDPOINT: box.imds!.url,
      // The instance role's credentials stand-in (the fake IMDS serves none).
      AWS_ACCESS_KEY_ID: 'AKIDFAKEINSTANCEROLE',
      AWS_SECRET_ACCESS_KEY: 'fake-instance-role-secret',
      ...this.runEnv.env
    }
    const ud = spawn('nsenter', ['-t', String(keeper.pid), '-m', '-n', '--', 'sh', file], { cwd: '/', env, stdio: ['ignore', out, out], detached: true })
    closeSync(out)
    return { exit: new Promise((resolve) => { ud.on('exit', (code) => { resolve(code) }); ud.on('error', () => { resolve(null) }) }) }
  }

  override async stop (id: string, graceMs = this.graceMs): Promise<void> {
    const box = this.boxes.get(id)
    if (box?.host === undefined) return super.stop(id)
    const ns = box.host.ns
    const signal = (sig: NodeJS.Signals): void => { for (const p of pidsIn(ns)) { try { process.kill(p, sig) } catch {} } }
    signal('SIGTERM')
    if (graceMs > 0) await waitFor(() => pidsIn(ns).length === 0, { timeoutMs: graceMs, intervalMs: 100, what: `instance ${id} to stop` }).catch(() => {})
    signal('SIGKILL')
    await waitFor(() => { signal('SIGKILL'); return pidsIn(ns).length === 0 }, { timeoutMs: 10_000, intervalMs: 50, what: `instance ${id}'s processes to die` }).catch(() => {})
    this.lan.removeHost(box.host!)
    await super.stop(id)
  }

  override async close (): Promise<void> {
    await Promise.all([...this.boxes.keys()].map(async (id) => this.stop(id, 0)))
    this.lan.destroy()
  }
}

