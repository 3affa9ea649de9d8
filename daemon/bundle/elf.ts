/**
 * Which machine an ELF file (a Node binary, a native addon) is built for,
 * from its header: so a bundle for arm64 never ships an x64 binary by
 * mistake, which would only show on the host as "Exec format error".
 */
import { closeSync, openSync, readSync } from 'node:fs'
import type { BundleArch } from '../../providers/bundle-manifest.ts'

/** e_machine values (ELF spec): EM_X86_64 and EM_AARCH64. */
const MACHINES: Record<number, BundleArch> = { 62: 'x64', 183: 'arm64' }

/** The arch of an ELF header (its first 20 bytes), 'other' for a machine meshd has no bundle for, null when it is no little-endian ELF. */
export function elfArch (header: Uint8Array): BundleArch | 'other' | null {
  if (header.length < 20 || header[0] !== 0x7f || header[1] !== 0x45 || header[2] !== 0x4c || header[3] !== 0x46) return null
  if (header[5] !== 1) return null // EI_DATA: 1 = little-endian, what both arches use
  return MACHINES[header[18]! | (header[19]! << 8)] ?? 'other'
}

/** Throws unless `file` is an ELF binary for `arch`; the message names the file and what it found. */
export function assertElfArch (file: string, arch: BundleArch, what: string): void {
  const header = Buffer.alloc(20)
  const fd = openSync(file, 'r')
  try { readSync(fd, header, 0, 20, 0) } finally { closeSync(fd) }
  const found = elfArch(header)
  if (found !== arch) {
    throw new Error(`${what} ${file} is ${found === null ? 'not an ELF binary' : `built for ${found}`}, expected linux-${arch}`)
  }
}
