/**
 * The manifest of a bundle file (tar.gz made by `meshd bundle`), read
 * without unpacking it: the manifest is the archive's first entry
 * (bundle-manifest.ts), so only its first few KB are inflated. The ssh
 * provider compares it with the one installed on a host to decide whether
 * the host needs the bundle at all.
 */
import { createReadStream } from 'node:fs'
import { createGunzip } from 'node:zlib'
import { BUNDLE_MANIFEST_FILE, parseBundleManifest, type BundleManifest } from '../bundle-manifest.ts'

const BLOCK = 512
/** A manifest is a few hundred bytes; anything bigger is not one. */
const MAX_MANIFEST = 64 * 1024

/** The name and size of a ustar header block, or null for the end-of-archive (zero) block. */
export function tarHeader (block: Buffer): { name: string, size: number } | null {
  if (block.every((b) => b === 0)) return null
  const str = (from: number, len: number): string => {
    const s = block.subarray(from, from + len)
    const nul = s.indexOf(0)
    return s.subarray(0, nul < 0 ? len : nul).toString('utf8')
  }
  const prefix = str(345, 155)
  const name = str(0, 100)
  const size = parseInt(str(124, 12).trim() || '0', 8)
  return { name: prefix === '' ? name : `${prefix}/${name}`, size }
}

/** The manifest inside `file`; throws naming the file when it is no bundle made by `meshd bundle`. */
export async function readBundleFileManifest (file: string): Promise<BundleManifest> {
  const input = createReadStream(file)
  const gunzip = createGunzip()
  let buf = Buffer.alloc(0)
  try {
    for await (const chunk of input.pipe(gunzip)) {
      buf = Buffer.concat([buf, chunk as Buffer])
      if (buf.length < BLOCK) continue
      const h = tarHeader(buf.subarray(0, BLOCK))
      if (h === null || !(h.name === BUNDLE_MANIFEST_FILE || h.name.endsWith(`/${BUNDLE_MANIFEST_FILE}`)) || h.size > MAX_MANIFEST) {
        throw new Error(`${file}: not a bundle made by \`meshd bundle\` (its first entry is ${h === null ? 'the end of the archive' : JSON.stringify(h.name)}, not ${BUNDLE_MANIFEST_FILE})`)
      }
      if (buf.length < BLOCK + h.size) continue
      return parseBundleManifest(buf.subarray(BLOCK, BLOCK + h.size).toString('utf8'), `${file}: ${h.name}`)
    }
    throw new Error(`${file}: ends before its manifest (${BUNDLE_MANIFEST_FILE}): a cut file?`)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'EACCES') throw new Error(`bundle ${file}: ${code === 'ENOENT' ? 'no such file' : 'permission denied'}`)
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') throw new Error(`${file}: not a gzip archive (${(e as Error).message})`)
    throw e
  } finally {
    input.destroy()
    gunzip.destroy()
  }
}
