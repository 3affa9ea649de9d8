/**
 * The probe's and the state script's output parsers (providers/ssh/probe.ts,
 * provider.ts), pure: what a host says becomes facts — GPUs, sudo refused
 * with sudo's own words ("a terminal is required"), an installed bundle —
 * and a login banner or a damaged record is not mistaken for one.
 */
import t from 'tap'
import { parseProbe, probeScript } from '../../providers/ssh/probe.ts'
import { dirName, unitName } from '../../providers/ssh/provider.ts'
import { shq } from '../../providers/ssh/remote.ts'
import { execFileSync } from 'node:child_process'

const out = (lines: string[]): string => ['meshd-probe-v1', ...lines].join('\n') + '\n'

t.test('a GPU host where sudo needs a terminal', async (t) => {
  const f = parseProbe(out([
    'user=deploy', 'os=Ubuntu 24.04.1 LTS', 'arch=x86_64', 'cpus=32', 'mem_kb=131072000',
    'gpu=NVIDIA A100-SXM4-80GB, 81920 MiB', 'gpu=NVIDIA A100-SXM4-80GB, 81920 MiB',
    'disk_kb=512000000', 'installed={"sha256":"ab12","version":"0.1.0","installed_at":1}', 'systemd=yes',
    'sudo_no=sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper'
  ]))
  t.match(f, { user: 'deploy', os: 'Ubuntu 24.04.1 LTS', arch: 'x86_64', bundleArch: 'x64', cpus: 32, memoryMb: 128000, freeDiskMb: 500000, systemd: true, installed: { sha256: 'ab12', version: '0.1.0' } })
  t.equal(f.gpus.length, 2)
  t.same(f.sudo, { ok: false, why: 'sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper' }, "sudo's own words")
})

t.test('arm64, no GPU, root, nothing installed; a banner is not a probe', async (t) => {
  const f = parseProbe('Welcome to host!\n' + out(['user=root', 'os=Debian GNU/Linux 12 (bookworm)', 'arch=aarch64', 'cpus=4', 'mem_kb=4000000', 'disk_kb=1000', 'systemd=no', 'sudo=root']))
  t.match(f, { bundleArch: 'arm64', gpus: [], installed: null, systemd: false, sudo: { ok: true, how: 'root' } })
  t.equal(parseProbe(out(['arch=riscv64'])).bundleArch, null, 'no bundle for riscv64')
  t.throws(() => parseProbe('Permission denied\n'), /not a probe's output/)
})

t.test('the real probe script on this machine', async (t) => {
  const f = parseProbe(execFileSync('sh', ['-c', probeScript('/nonexistent/meshd/dir')]).toString())
  t.ok(f.cpus !== null && f.cpus > 0 && f.memoryMb !== null && f.freeDiskMb !== null, 'facts read (disk from the nearest existing parent)')
  t.equal(f.installed, null)
})

t.test('names on the host: keys made safe, unit names, quoting', async (t) => {
  t.equal(dirName('d2-3-0'), 'd2-3-0')
  t.match(dirName('../etc/x y'), /^etc_x_y-[0-9a-f]{16}$/, 'no path escapes')
  t.not(dirName('a/b'), dirName('a_b'), 'made-safe keys never collide with safe ones')
  t.equal(unitName('d2-3-0'), 'meshd-burst-d2-3-0')
  t.equal(execFileSync('sh', ['-c', `printf %s ${shq("it's $(rm -rf /)")}`]).toString(), "it's $(rm -rf /)", 'single quotes survive the shell')
})
