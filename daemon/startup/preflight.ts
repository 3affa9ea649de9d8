/**
 * What `meshd start` checks of the files and directories the config names,
 * before anything else runs. Each failure is a ConfigError (exit 2) naming
 * the file and the key, because without these checks the daemon fails late
 * and in words that name neither: a `state_dir` that is a file gives EEXIST
 * from deep in SQLite's set-up, one under /proc makes Node's recursive mkdir
 * spin forever on ENOENT (100% CPU, deaf to SIGTERM: it never returns to the
 * event loop), and a key file others can read is a secret silently shared.
 */
import { mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ConfigError } from '../config/errors.ts'
import { IDENTITY_FILE } from '../../mesh/identity.ts'
import type { Config } from '../config/schema.ts'

/** All of them, in the order an operator would fix them. */
export function preflight (config: Config, file: string): void {
  checkStateDir(config.state_dir, file)
  checkPrivateKeyFile(config.swarm_key_file, 'swarm_key_file')
  checkPrivateKeyFile(join(config.state_dir, IDENTITY_FILE), `state_dir (${IDENTITY_FILE})`)
}

/**
 * `state_dir` exists as a directory we can write, or can be made one. The
 * missing levels are made one at a time, never with `recursive: true`,
 * whose loop never ends on file systems such as /proc that answer ENOENT to
 * any mkdir.
 */
export function checkStateDir (dir: string, file: string): void {
  const path = resolve(dir)
  const missing: string[] = []
  let at = path
  for (;;) {
    const st = statSync(at, { throwIfNoEntry: false })
    if (st !== undefined) {
      if (!st.isDirectory()) {
        const what = at === path ? `${path} is not a directory` : `${at}, on its path, is not a directory`
        throw new ConfigError(file, 'state_dir', `a directory meshd can write (its identity and database live there)`, 1, what)
      }
      break
    }
    missing.unshift(at)
    const up = dirname(at)
    if (up === at) break
    at = up
  }
  for (const level of missing) {
    try {
      mkdirSync(level, { mode: 0o750 })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err)
      if (code === 'EEXIST') continue // made meanwhile (another process): checked by the write below
      throw new ConfigError(file, 'state_dir', 'a directory meshd can create and write (its identity and database live there)', 1, `cannot create ${level} (${code})`)
    }
  }
  // Writing is what the daemon will do; a directory we cannot write (read-only,
  // another user's, a pseudo file system) is refused now, not at the first write.
  const probe = join(path, `.meshd-write-check-${process.pid}`)
  try {
    writeFileSync(probe, '')
    unlinkSync(probe)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new ConfigError(file, 'state_dir', 'a directory meshd can write (its identity and database live there)', 1, `cannot write in ${path} (${code})`)
  }
}

/**
 * A private key readable by anyone but its owner is refused, as ssh refuses
 * such an identity file: the swarm key admits a machine to the mesh, the
 * identity key is this node. An absent file is for its reader to report.
 */
export function checkPrivateKeyFile (path: string, key: string): void {
  let mode: number
  try {
    const st = statSync(path, { throwIfNoEntry: false })
    if (st === undefined || !st.isFile()) return
    mode = st.mode & 0o777
  } catch {
    return // unreadable metadata: the reader says why
  }
  if ((mode & 0o077) === 0) return
  throw new ConfigError(path, key, `a private key only its owner can read (mode 0600, as ssh asks of private keys): run \`chmod 600 ${path}\``, 1, `readable by group or others (mode ${mode.toString(8).padStart(4, '0')})`)
}
