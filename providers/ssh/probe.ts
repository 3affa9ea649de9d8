/**
 * What a pool host is: one POSIX shell script run over SSH prints
 * `key=value` lines, and a pure parser turns them into facts. One round
 * trip, nothing installed, no root needed to read.
 */
import { shq } from './remote.ts'

export interface HostFacts {
  os: string
  /** `uname -m`: x86_64, aarch64 … */
  arch: string
  /** meshd's name for it (bundles are per arch): x64, arm64, or null when meshd has none. */
  bundleArch: 'x64' | 'arm64' | null
  cpus: number | null
  memoryMb: number | null
  /** `nvidia-smi` names and memory, one per GPU; empty when there is none (or no nvidia-smi). */
  gpus: string[]
  /** Free space where install_dir is (or its nearest existing parent), MB. */
  freeDiskMb: number | null
  /** The installed bundle (install_dir/installed.json), or null when meshd is not installed. */
  installed: { sha256: string, version: string, contentsSha256: string | null } | null
  systemd: boolean
  /** root, or `sudo -n true` works: true; otherwise what sudo said (e.g. "sudo: a terminal is required"). */
  sudo: { ok: true, how: 'root' | 'sudo' } | { ok: false, why: string }
  user: string
}

const MARK = 'meshd-probe-v1'

/** The probe script for a host whose install dir is `installDir`. */
export function probeScript (installDir: string): string {
  const dir = shq(installDir)
  return [
    `echo ${MARK}`,
    'echo "user=$(id -un)"',
    'echo "os=$( (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || uname -s)"',
    'echo "arch=$(uname -m)"',
    'echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"',
    'echo "mem_kb=$(awk \'/^MemTotal:/{print $2}\' /proc/meminfo 2>/dev/null)"',
    'if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | while IFS= read -r g; do echo "gpu=$g"; done; fi',
    `d=${dir}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; echo "disk_kb=$(df -Pk "$d" 2>/dev/null | awk 'NR==2{print $4}')"`,
    `if [ -r ${dir}/installed.json ]; then echo "installed=$(tr -d '\\n' < ${dir}/installed.json)"; fi`,
    'if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi',
    'if [ "$(id -u)" = 0 ]; then echo sudo=root; elif ! command -v sudo >/dev/null 2>&1; then echo "sudo_no=sudo is not installed"; ' +
      'elif out=$(sudo -n true 2>&1 </dev/null); then echo sudo=yes; else echo "sudo_no=$(echo "$out" | head -n 1)"; fi'
  ].join('\n') + '\n'
}

function int (s: string | undefined): number | null {
  if (s === undefined || !/^\d+$/.test(s.trim())) return null
  return Number(s.trim())
}

/** Parses the probe's output; throws with the reason when it is not a probe's output. */
export function parseProbe (stdout: string): HostFacts {
  const lines = stdout.split('\n')
  if (!lines.includes(MARK)) throw new Error(`not a probe's output (a login banner or a shell that is not POSIX?): ${JSON.stringify(stdout.slice(0, 200))}`)
  const kv = new Map<string, string>()
  const gpus: string[] = []
  for (const l of lines) {
    const i = l.indexOf('=')
    if (i <= 0) continue
    const k = l.slice(0, i)
    const v = l.slice(i + 1)
    if (k === 'gpu') { if (v.trim() !== '') gpus.push(v.trim()) } else kv.set(k, v)
  }
  const arch = kv.get('arch') ?? ''
  let installed: HostFacts['installed'] = null
  const inst = kv.get('installed')
  if (inst !== undefined) {
    try {
      const j = JSON.parse(inst) as { sha256?: unknown, version?: unknown, contents_sha256?: unknown }
      if (typeof j.sha256 === 'string') installed = { sha256: j.sha256, version: typeof j.version === 'string' ? j.version : '?', contentsSha256: typeof j.contents_sha256 === 'string' ? j.contents_sha256 : null }
    } catch {}
  }
  const memKb = int(kv.get('mem_kb'))
  const diskKb = int(kv.get('disk_kb'))
  const sudo = kv.get('sudo')
  return {
    os: kv.get('os') ?? '?',
    arch,
    bundleArch: arch === 'x86_64' || arch === 'amd64' ? 'x64' : arch === 'aarch64' || arch === 'arm64' ? 'arm64' : null,
    cpus: int(kv.get('cpus')),
    memoryMb: memKb === null ? null : Math.round(memKb / 1024),
    gpus,
    freeDiskMb: diskKb === null ? null : Math.floor(diskKb / 1024),
    installed,
    systemd: kv.get('systemd') === 'yes',
    sudo: sudo === 'root' ? { ok: true, how: 'root' } : sudo === 'yes' ? { ok: true, how: 'sudo' } : { ok: false, why: kv.get('sudo_no') ?? 'unknown' },
    user: kv.get('user') ?? '?'
  }
}
