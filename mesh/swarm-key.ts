/**
 * The pre-shared key of the private mesh, in the libp2p pnet (and IPFS
 * swarm.key) format:
 *
 *   /key/swarm/psk/1.0.0/
 *   /base16/
 *   <64 hex digits>
 *
 * A node holding another key cannot complete a connection: pnet encrypts the
 * whole stream with XSalsa20 under this key before any libp2p handshake.
 */
import { readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { randomBytes } from 'node:crypto'

const HEADER = '/key/swarm/psk/1.0.0/'
const ENCODING = '/base16/'

export class SwarmKeyError extends Error {
  readonly file: string
  constructor (file: string, problem: string) {
    super(`${file}: ${problem}`)
    this.name = 'SwarmKeyError'
    this.file = file
  }
}

/** A new key, as the text of a swarm.key file. */
export function generateSwarmKey (): string {
  return `${HEADER}\n${ENCODING}\n${randomBytes(32).toString('hex')}\n`
}

/** Parses and checks a swarm key file's text; returns the bytes pnet wants. */
export function parseSwarmKey (text: string, file: string): Uint8Array {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '')
  if (lines[0] !== HEADER) throw new SwarmKeyError(file, `expected the first line to be ${HEADER}`)
  if (lines[1] !== ENCODING) throw new SwarmKeyError(file, `expected the second line to be ${ENCODING} (only base16 keys are supported)`)
  if (!/^[0-9a-fA-F]{64}$/.test(lines[2] ?? '')) throw new SwarmKeyError(file, 'expected the third line to be 64 hex digits (a 32-byte key)')
  // pnet parses the same three lines itself; hand it the canonical text.
  return new TextEncoder().encode(`${HEADER}\n${ENCODING}\n${lines[2]!.toLowerCase()}`)
}

export function readSwarmKey (file: string): Uint8Array {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new SwarmKeyError(file, `cannot read the swarm key (${(err as NodeJS.ErrnoException).code ?? String(err)}); copy it from a member of the mesh or run \`meshd init\` on the first node`)
  }
  return parseSwarmKey(text, file)
}

/** Writes a key file readable by its owner only, atomically (never half a key). */
export function writeSecretFile (file: string, content: string | Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o750 })
  const tmp = `${file}.tmp-${process.pid}`
  writeFileSync(tmp, content, { mode: 0o600 })
  renameSync(tmp, file)
}
