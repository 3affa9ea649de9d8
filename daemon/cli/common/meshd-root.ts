/** Where this copy of meshd lives (the directory holding bin/, daemon/, systemd/, docs/). */
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export function meshdRoot (): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
}
