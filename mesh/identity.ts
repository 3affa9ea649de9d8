/**
 * The node's libp2p identity: an Ed25519 key kept in the state dir, so the
 * peer id survives restarts (members, the voter set and the ledger refer to
 * nodes by peer id).
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { writeSecretFile } from './swarm-key.ts'

export const IDENTITY_FILE = 'identity.key'

export interface Identity {
  privateKey: PrivateKey
  peerId: PeerId
  created: boolean
}

export async function loadOrCreateIdentity (stateDir: string): Promise<Identity> {
  return loadIdentity(stateDir) ?? await createIdentity(stateDir)
}

/** The identity kept in the state dir, or null when there is none (a bad key file throws, naming it). */
export function loadIdentity (stateDir: string): Identity | null {
  const file = join(stateDir, IDENTITY_FILE)
  if (!existsSync(file)) return null
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(readFileSync(file))
  } catch (err) {
    throw new Error(`${file}: not a libp2p private key (${(err as Error).message}); move it away to create a new identity (the node gets a new peer id)`)
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), created: false }
}

/** A new identity, written to the state dir (mode 0600). */
export async function createIdentity (stateDir: string): Promise<Identity> {
  const privateKey = await generateKeyPair('Ed25519')
  writeSecretFile(join(stateDir, IDENTITY_FILE), privateKeyToProtobuf(privateKey))
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), created: true }
}
