/**
 * The systemd unit: systemd's own verifier accepts it, it carries the
 * hardening a reviewer expects, and install-service puts it, the user and
 * the directories in place (into a scratch root, so the test host is left
 * alone).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { MESHD, REPO } from '../helpers/daemon.ts'
import { renderUnit } from '../../daemon/cli/commands/install-service.ts'

const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0

t.test('systemd-analyze verify accepts the unit, without warnings', { skip: hasAnalyze ? false : 'systemd-analyze is not installed (Debian package systemd)' }, async (t) => {
  const dir = tempDir(t)
  const unit = join(dir, 'meshd.service')
  writeFileSync(unit, renderUnit(REPO, 'root'))
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stderr.trim(), '', 'no warnings')
})

t.test('the unit restarts on failure, drains before kill, and is hardened', async (t) => {
  const unit = renderUnit('/opt/meshd', 'meshd')
  const want = [
    'ExecStart=/opt/meshd/bin/meshd start', 'User=meshd', 'Group=meshd', 'Restart=on-failure', 'KillSignal=SIGTERM', 'TimeoutStopSec=150s',
    'StateDirectory=meshd', 'RuntimeDirectory=meshd', 'ConfigurationDirectory=meshd', 'Environment=MESHD_CONFIG=/etc/meshd/meshd.yaml',
    'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'ProtectKernelTunables=yes', 'ProtectKernelModules=yes',
    'ProtectControlGroups=yes', 'RestrictSUIDSGID=yes', 'RestrictNamespaces=yes', 'LockPersonality=yes', 'CapabilityBoundingSet=',
    'SystemCallFilter=@system-service', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK'
  ]
  for (const line of want) t.match(unit, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), line)
  t.notMatch(unit, /@MESHD_ROOT@/, 'the install path is filled in')
})

const isRoot = process.getuid?.() === 0

t.test('install-service creates the user, the directories and the unit', { skip: isRoot ? false : 'needs root (useradd)' }, async (t) => {
  const dir = tempDir(t)
  const sysroot = join(dir, 'root')
  mkdirSync(join(sysroot, 'etc'), { recursive: true })
  for (const f of ['passwd', 'group', 'shadow', 'gshadow', 'login.defs']) if (existsSync(`/etc/${f}`)) copyFileSync(`/etc/${f}`, join(sysroot, 'etc', f))
  const prefix = join(dir, 'opt-meshd')
  mkdirSync(join(prefix, 'bin'), { recursive: true })
  symlinkSync(MESHD, join(prefix, 'bin', 'meshd'))

  const dry = await meshd(['install-service', '--root', sysroot, '--prefix', prefix, '--dry-run'])
  t.equal(dry.code, 0, dry.stderr)
  t.match(dry.stdout, /would create system user and group "meshd"/)
  t.notOk(existsSync(join(sysroot, 'etc/systemd/system/meshd.service')), 'dry run changes nothing')

  const r = await meshd(['install-service', '--root', sysroot, '--prefix', prefix])
  t.equal(r.code, 0, r.stderr)
  const passwd = readFileSync(join(sysroot, 'etc/passwd'), 'utf8')
  t.match(passwd, /^meshd:x:\d+:\d+::\/var\/lib\/meshd:\/usr\/sbin\/nologin$/m, 'a system user with no login shell')
  t.notMatch(readFileSync('/etc/passwd', 'utf8'), /^meshd:.*:\/var\/lib\/meshd:/m, 'the host was not touched')
  const unit = readFileSync(join(sysroot, 'etc/systemd/system/meshd.service'), 'utf8')
  t.match(unit, `ExecStart=${prefix}/bin/meshd start`)
  t.equal(statSync(join(sysroot, 'var/lib/meshd')).mode & 0o777, 0o750)
  const uid = Number(/^meshd:x:(\d+):/m.exec(passwd)![1])
  t.equal(statSync(join(sysroot, 'var/lib/meshd')).uid, uid, 'the state dir belongs to meshd')
  const again = await meshd(['install-service', '--root', sysroot, '--prefix', prefix])
  t.equal(again.code, 0, 'running it twice is harmless')
  t.equal(readFileSync(join(sysroot, 'etc/passwd'), 'utf8').match(/^meshd:/mg)?.length, 1, 'the user is created once')
})

t.test('install-service refuses a prefix the unit could not see', async (t) => {
  const r = await meshd(['install-service', '--prefix', '/root/meshd-nowhere', '--dry-run'])
  t.equal(r.code, 2, 'no meshd there: usage error')
  t.match(r.stderr, /does not exist/)
})
