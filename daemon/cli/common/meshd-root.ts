/** Where this copy of meshd lives (the directory holding bin/, systemd/, docs/): a checkout or an unpacked bundle. */
import { MESHD_ROOT } from '../../own-files.ts'

export function meshdRoot (): string {
  return MESHD_ROOT
}
