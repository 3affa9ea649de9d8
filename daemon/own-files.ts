/**
 * Where this copy of meshd keeps its own files, the same way in a source
 * checkout and in a bundle made by `meshd bundle`. Both put this module's code
 * one directory below the root: daemon/own-files.ts in a checkout, lib/*.js
 * (the bundled entries and their chunks) in a bundle. So the root is always
 * `..` from here, and the processes and threads meshd starts from its own code
 * (the simulator, the body parser) are found by name, not by a path relative
 * to the module that starts them (bundling moves that module).
 */
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

/** The directory holding bin/, systemd/, docs/ and package.json. */
export const MESHD_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '')

/** A bundle carries its built entries in lib/; a checkout runs the .ts sources. */
export const BUNDLED = import.meta.url.endsWith('.js')

/** The entries meshd runs as their own process or thread: the bundle's lib/<name>.js, a checkout's source. */
export const ENTRIES = {
  meshd: 'daemon/cli/main.ts',
  sim: 'daemon/replica/sim/main.ts',
  'parse-worker': 'daemon/http/parse-worker.ts'
} as const

export type EntryName = keyof typeof ENTRIES

/** The file to run for an entry in this copy of meshd. */
export function entryFile (name: EntryName): string {
  return BUNDLED ? join(MESHD_ROOT, 'lib', `${name}.js`) : join(MESHD_ROOT, ENTRIES[name])
}

