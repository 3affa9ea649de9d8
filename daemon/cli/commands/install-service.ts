import { readFileSync, writeFileSync, mkdirSync, chownSync, existsSync, realpathSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { parseCommandArgs, CommandFailed, UsageError } from '../common/command.ts'
import { meshdRoot } from '../common/meshd-root.ts'
import { hiddenByUnit, hiddenFrom } from '../common/unit-sandbox.ts'

export const help = `usage: meshd install-service [--prefix DIR] [--unit-dir DIR] [--user NAME] [--no-user] [--root DIR] [--dry-run]

Installs the systemd unit (systemd/meshd.service) for this meshd, a system
user and group to run it, and its directories: /etc/meshd (config, swarm key),
/var/lib/meshd (identity, database), /run/meshd (admin socket) is made by
systemd at start. Needs root. Then:

  meshd init --config /etc/meshd/meshd.yaml      # on the first node; copy swarm.key to the others
  systemctl enable --now meshd
  meshd join /ip4/<first node>/tcp/4001/p2p/<peer id>   # on the others

  --prefix DIR     where meshd is installed (default: this copy, ${meshdRoot()}); the
                   service must see it: not under /tmp or /var/tmp (the unit's PrivateTmp),
                   /home, /root or /run/user (ProtectHome); /opt/meshd is the usual place
  --unit-dir DIR   where the unit goes (default: /etc/systemd/system)
  --user NAME      the user and group the daemon runs as (default: meshd)
  --no-user        do not create the user (it exists, or is managed elsewhere)
  --root DIR       install into an image or chroot at DIR instead of / (as useradd --root);
                   --prefix is then a path inside DIR
  --dry-run        print what would be done, change nothing`

/** The unit as it ships, with @MESHD_ROOT@ still in it. */
function unitTemplate (): string {
  return readFileSync(join(meshdRoot(), 'systemd', 'meshd.service'), 'utf8')
}

/** The unit text for a given install directory and user. */
export function renderUnit (prefix: string, user: string): string {
  return unitTemplate().replaceAll('@MESHD_ROOT@', prefix).replace(/^User=.*$/m, `User=${user}`).replace(/^Group=.*$/m, `Group=${user}`)
}

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('install-service', argv, {
    prefix: { type: 'string' },
    'unit-dir': { type: 'string' },
    user: { type: 'string', default: 'meshd' },
    'no-user': { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
    root: { type: 'string' }
  })
  const sysroot = resolve(values.root ?? '/')
  const at = (p: string): string => join(sysroot, p)
  const prefix = resolve(values.prefix ?? meshdRoot())
  const unitDir = at(values['unit-dir'] ?? '/etc/systemd/system')
  const user = values.user
  const dry = values['dry-run']
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw new UsageError(`install-service: --user "${user}" is not a valid user name`)
  // With --root, the prefix is a path inside that root, as the installed unit will see it.
  if (!existsSync(at(join(prefix, 'bin', 'meshd')))) throw new UsageError(`install-service: ${prefix}/bin/meshd does not exist${sysroot === '/' ? '' : ` in ${sysroot}`} (--prefix must be a meshd install)`)
  refuseHiddenPrefix(prefix, sysroot)
  if (!dry && process.getuid?.() !== 0) throw new CommandFailed('install-service: must run as root (or use --dry-run to see what it would do)')

  const steps: Array<{ what: string, run: () => void }> = []
  if (!values['no-user']) {
    steps.push({
      what: `create system user and group "${user}" (home /var/lib/meshd, no login shell) unless it exists`,
      run: () => {
        if (idsOf(user, sysroot) !== null) return
        const rootArgs = sysroot === '/' ? [] : ['--root', sysroot]
        execFileSync(adminTool('useradd'), [...rootArgs, '--system', '--user-group', '--home-dir', '/var/lib/meshd', '--no-create-home', '--shell', '/usr/sbin/nologin', user], { stdio: 'inherit' })
      }
    })
  }
  steps.push({
    what: `create /etc/meshd (0750, root:${user}) and /var/lib/meshd (0750, ${user}:${user})`,
    run: () => {
      mkdirSync(at('/etc/meshd'), { recursive: true, mode: 0o750 })
      mkdirSync(at('/var/lib/meshd'), { recursive: true, mode: 0o750 })
      const ids = idsOf(user, sysroot)
      if (ids !== null) {
        chownSync(at('/etc/meshd'), 0, ids.gid)
        chownSync(at('/var/lib/meshd'), ids.uid, ids.gid)
      }
    }
  })
  const unitPath = join(unitDir, 'meshd.service')
  steps.push({ what: `write ${unitPath} (ExecStart=${prefix}/bin/meshd start, User=${user})`, run: () => { mkdirSync(unitDir, { recursive: true }); writeFileSync(unitPath, renderUnit(prefix, user), { mode: 0o644 }) } })
  if (sysroot === '/' && existsSync('/run/systemd/system')) steps.push({ what: 'systemctl daemon-reload', run: () => { execFileSync('systemctl', ['daemon-reload'], { stdio: 'inherit' }) } })

  for (const s of steps) {
    process.stdout.write(`${dry ? 'would ' : ''}${s.what}\n`)
    if (!dry) s.run()
  }
  process.stdout.write(`\nnext:\n  ${prefix}/bin/meshd init --config /etc/meshd/meshd.yaml --owner ${user}   # first node; copy /etc/meshd/swarm.key to the others\n  systemctl enable --now meshd\n`)
  return 0
}

/**
 * The unit runs ${prefix}/bin/meshd inside its sandbox: a prefix the sandbox
 * hides (PrivateTmp, ProtectHome ...) would install a service that cannot
 * start. Checked on the real path, so a symlink from /opt into a home is caught.
 */
function refuseHiddenPrefix (prefix: string, sysroot: string): void {
  const real = realInside(prefix, sysroot)
  const hit = hiddenFrom(real, hiddenByUnit(unitTemplate()))
  if (hit === null) return
  const where = real === prefix ? prefix : `${prefix} (really ${real})`
  throw new UsageError(`install-service: meshd is in ${where}, which the service cannot see: the unit's ${hit.directive} ${hit.effect}. ` +
    'Move or clone the project to a directory outside it, e.g. /opt/meshd ' +
    `(\`cp -a ${real} /opt/meshd\` or \`git clone <repository> /opt/meshd\`, then \`cd /opt/meshd && npm ci --omit=dev\`), ` +
    'and run `/opt/meshd/bin/meshd install-service` from there')
}

/** The real path of `path` inside `sysroot` (symlinks resolved), as a path inside it. */
function realInside (path: string, sysroot: string): string {
  const real = realpathSync(join(sysroot, path))
  if (sysroot === '/') return real
  const root = realpathSync(sysroot)
  // A symlink that leaves the root (an absolute link in an image) cannot be judged from here: keep the given path.
  return real === root ? '/' : real.startsWith(root + '/') ? real.slice(root.length) : path
}

function idsOf (user: string, sysroot: string): { uid: number, gid: number } | null {
  try {
    const line = readFileSync(join(sysroot, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${user}:`))
    if (line === undefined) return null
    const f = line.split(':')
    return { uid: Number(f[2]), gid: Number(f[3]) }
  } catch {
    return null
  }
}

/**
 * An administration tool by name, also when PATH lacks the sbin directories
 * (root reached with `su` without `-` keeps the user's PATH): useradd lives
 * in /usr/sbin on Debian and most others.
 */
export function adminTool (name: string, path = process.env.PATH ?? ''): string {
  for (const dir of [...path.split(':').filter(Boolean), '/usr/sbin', '/sbin']) {
    if (existsSync(join(dir, name))) return join(dir, name)
  }
  return name
}
