/**
 * The systemd unit: systemd's own verifier accepts it, it carries the
 * hardening a reviewer expects, and install-service puts it, the user and
 * the directories in place (into a scratch root, so the test host is left
 * alone).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { meshd } from '../helpers/cli.ts'
import { MESHD, REPO } from '../helpers/daemon.ts'
import { renderUnit } from '../../daemon/cli/commands/install-service.ts'
import { hiddenByUnit, hiddenFrom } from '../../daemon/cli/common/unit-sandbox.ts'

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
  // The prefix is a path inside --root, as the installed unit sees it (and visible to it, unlike the test's own /tmp).
  const prefix = '/opt/meshd'
  mkdirSync(join(sysroot, prefix, 'bin'), { recursive: true })
  symlinkSync(MESHD, join(sysroot, prefix, 'bin', 'meshd'))

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

t.test('install-service refuses a prefix with no meshd in it', async (t) => {
  const r = await meshd(['install-service', '--prefix', '/root/meshd-nowhere', '--dry-run'])
  t.equal(r.code, 2, 'no meshd there: usage error')
  t.match(r.stderr, /does not exist/)
})

t.test('the paths the unit hides are read from the unit itself', async (t) => {
  const hidden = hiddenByUnit(renderUnit('/opt/meshd', 'meshd'))
  const at = (dir: string): string | undefined => hiddenFrom(dir, hidden)?.directive
  t.equal(at('/tmp/meshd'), 'PrivateTmp=yes')
  t.equal(at('/var/tmp/x/meshd'), 'PrivateTmp=yes')
  t.equal(at('/home/ann/meshd'), 'ProtectHome=yes')
  t.equal(at('/root/meshd'), 'ProtectHome=yes')
  t.equal(at('/run/user/1000/meshd'), 'ProtectHome=yes')
  t.equal(at('/root'), 'ProtectHome=yes', 'the directory itself, not only below it')
  for (const ok of ['/opt/meshd', '/usr/local/lib/meshd', '/srv/meshd', '/tmpfoo/meshd', '/homes/meshd', '/run/meshd-app']) t.equal(at(ok), undefined, `${ok} is visible`)

  // The refusal follows the unit: other protections, and none.
  const unit = (lines: string): string => `[Unit]\nDescription=x\n[Service]\n${lines}\n[Install]\nWantedBy=multi-user.target\n`
  t.same(hiddenByUnit(unit('ProtectHome=read-only\nPrivateTmp=no')), [], 'read-only homes stay visible; no PrivateTmp, no private /tmp')
  t.same(hiddenByUnit(unit('ProtectHome=tmpfs')).map((h) => h.path), ['/home', '/root', '/run/user'])
  t.same(hiddenByUnit(unit('InaccessiblePaths=-/srv/secret /data/\nTemporaryFileSystem=/var/cache:ro')).map((h) => h.path), ['/srv/secret', '/data', '/var/cache'])
  t.same(hiddenByUnit('[Unit]\nPrivateTmp=yes\n# PrivateTmp=yes in a comment\n[Service]\nType=exec\n'), [], 'only the [Service] section counts')
})

t.test('install-service refuses a prefix the unit hides, and says what to do now', async (t) => {
  // A real meshd copy under /tmp (not tmpdir(): TMPDIR may point elsewhere), as a user who cloned it there has.
  const dir = mkdtempSync('/tmp/meshd-prefix-')
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'bin'))
  symlinkSync(MESHD, join(dir, 'bin', 'meshd'))
  const r = await meshd(['install-service', '--prefix', dir, '--dry-run'])
  t.equal(r.code, 2, 'a prefix the service cannot see is bad usage')
  t.match(r.stderr, `meshd is in ${dir}, which the service cannot see: the unit's PrivateTmp=yes gives the service its own empty /tmp`)
  t.match(r.stderr, /Move or clone the project to a directory outside it, e\.g\. \/opt\/meshd/)
  t.match(r.stderr, /run `\/opt\/meshd\/bin\/meshd install-service` from there/)
  t.notMatch(r.stderr, /bundle/, 'no command that does not exist yet')
  t.equal(r.stdout, '', 'nothing was (even hypothetically) done')
})

t.test('inside an image (--root): a hidden prefix is refused, also behind a symlink; a visible one is accepted', async (t) => {
  const sysroot = tempDir(t)
  const place = (dir: string): void => {
    mkdirSync(join(sysroot, dir, 'bin'), { recursive: true })
    symlinkSync(MESHD, join(sysroot, dir, 'bin', 'meshd'))
  }
  place('/home/ann/meshd')
  place('/var/tmp/meshd')
  place('/srv/meshd')
  mkdirSync(join(sysroot, 'opt'))
  symlinkSync('../home/ann/meshd', join(sysroot, 'opt/meshd'))

  const home = await meshd(['install-service', '--root', sysroot, '--prefix', '/home/ann/meshd', '--dry-run'])
  t.equal(home.code, 2)
  t.match(home.stderr, "meshd is in /home/ann/meshd, which the service cannot see: the unit's ProtectHome=yes makes /home inaccessible to the service")
  const varTmp = await meshd(['install-service', '--root', sysroot, '--prefix', '/var/tmp/meshd', '--dry-run'])
  t.equal(varTmp.code, 2)
  t.match(varTmp.stderr, /PrivateTmp=yes gives the service its own empty \/var\/tmp/)
  const link = await meshd(['install-service', '--root', sysroot, '--prefix', '/opt/meshd', '--dry-run'])
  t.equal(link.code, 2, 'judged by the real path')
  t.match(link.stderr, 'meshd is in /opt/meshd (really /home/ann/meshd)')
  const ok = await meshd(['install-service', '--root', sysroot, '--prefix', '/srv/meshd', '--dry-run'])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /ExecStart=\/srv\/meshd\/bin\/meshd start/)
})

t.test('install-service finds useradd when PATH lacks the sbin directories (root by `su` without `-`)', async (t) => {
  const { adminTool } = await import('../../daemon/cli/commands/install-service.ts')
  const { existsSync } = await import('node:fs')
  const where = ['/usr/sbin/useradd', '/sbin/useradd'].find((p) => existsSync(p))
  if (where === undefined) { t.pass('no useradd in /usr/sbin or /sbin here: nothing to find'); return }
  t.equal(adminTool('useradd', '/usr/local/bin:/usr/bin:/bin'), where.startsWith('/usr/sbin') ? '/usr/sbin/useradd' : where)
  t.equal(adminTool('no-such-tool-xyz', '/usr/bin'), 'no-such-tool-xyz', 'an unknown tool is left to PATH (and its error)')
})
