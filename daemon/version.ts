/** Versions reported by `meshd version` and carried in heartbeats. */
import { readFileSync } from 'node:fs'

function readVersion (pkgUrl: URL): string {
  try {
    return (JSON.parse(readFileSync(pkgUrl, 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

export const MESHD_VERSION = readVersion(new URL('../package.json', import.meta.url))

export function libp2pVersion (): string {
  return readVersion(new URL('../node_modules/libp2p/package.json', import.meta.url))
}
