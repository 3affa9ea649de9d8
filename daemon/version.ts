/** Versions reported by `meshd version` and carried in heartbeats. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { version as LIBP2P_VERSION } from 'libp2p/version'
import { MESHD_ROOT } from './own-files.ts'

function readVersion (pkgFile: string): string {
  try {
    return (JSON.parse(readFileSync(pkgFile, 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** From package.json at the root (a bundle carries one with the same version). */
export const MESHD_VERSION = readVersion(join(MESHD_ROOT, 'package.json'))

/** Built into libp2p itself, so a bundle (no node_modules/libp2p) reports it too. */
export function libp2pVersion (): string {
  return LIBP2P_VERSION
}
