/**
 * Which paths the systemd unit's sandbox hides from the service. Read from
 * the unit text itself, so install-service refuses an install prefix the
 * service could not see whatever protections the unit carries (a prefix under
 * /tmp looks fine to the admin and is an empty private /tmp to the service).
 *
 * Only directives that make a path invisible or empty count: ProtectSystem
 * makes /usr, /opt ... read-only, which a program directory can live with.
 */

export interface HiddenPath {
  /** An absolute directory; everything below it is hidden too. */
  path: string
  /** The unit line that hides it, e.g. `PrivateTmp=yes`. */
  directive: string
  /** What the directive does there, as the error message says it: "gives the service its own empty /tmp". */
  effect: string
}

const YES = /^(yes|true|on|1)$/i

/** The paths hidden by a unit's [Service] section, in the order of its lines. */
export function hiddenByUnit (unitText: string): HiddenPath[] {
  const out: HiddenPath[] = []
  let section = ''
  for (const raw of unitText.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header !== null) { section = header[1]!; continue }
    if (section !== 'Service') continue
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    const directive = `${key}=${value}`
    switch (key) {
      case 'ProtectHome':
        // read-only leaves the files visible; yes and tmpfs hide them.
        if (YES.test(value) || value === 'tmpfs') {
          for (const path of ['/home', '/root', '/run/user']) out.push({ path, directive, effect: value === 'tmpfs' ? `shows the service an empty ${path}` : `makes ${path} inaccessible to the service` })
        }
        break
      case 'PrivateTmp':
        if (YES.test(value) || value === 'disconnected') {
          for (const path of ['/tmp', '/var/tmp']) out.push({ path, directive, effect: `gives the service its own empty ${path}` })
        }
        break
      case 'PrivateDevices':
        if (YES.test(value)) out.push({ path: '/dev', directive, effect: 'gives the service a minimal /dev' })
        break
      case 'InaccessiblePaths':
      case 'TemporaryFileSystem':
        for (const word of value.split(/\s+/).filter((w) => w !== '')) {
          // `-/path` ignores a missing path, `+/path` is relative to RootDirectory; TemporaryFileSystem takes `/path:options`.
          const path = word.replace(/^[-+]+/, '').split(':')[0]!
          const dir = path.replace(/\/+$/, '') || '/'
          if (dir.startsWith('/')) out.push({ path: dir, directive, effect: key === 'InaccessiblePaths' ? `makes ${dir} inaccessible to the service` : `shows the service an empty ${dir}` })
        }
        break
    }
  }
  return out
}

/** The first hidden path that contains `dir` (an absolute, resolved path), or null. */
export function hiddenFrom (dir: string, hidden: HiddenPath[]): HiddenPath | null {
  return hidden.find((h) => dir === h.path || dir.startsWith(h.path === '/' ? '/' : h.path + '/')) ?? null
}
