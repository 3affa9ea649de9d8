/**
 * The private network (libp2p pnet) with a verdict when the swarm keys differ.
 *
 * pnet exchanges two random nonces in the clear and then XORs everything with
 * an XSalsa20 stream of the shared key. Two nodes with different keys still
 * connect and exchange nonces; what follows decrypts to noise, so the next
 * step (multistream-select, then noise) fails with some parse error or, more
 * often, waits for a length that never comes until the dial times out. Stock
 * libp2p cannot tell that apart from a slow peer (the go-ipfs answer to
 * ipfs-cluster#167 was "there is no way to detect it nicely").
 *
 * There is one here: whatever a libp2p peer sends first, once the connection
 * is protected, is the multistream-select header (`\x13/multistream/1.0.0\n`,
 * the dialer opens the encrypter's negotiation with it). So:
 *
 * - the side that receives bytes (the listener always does) compares the
 *   first 20 decrypted bytes with that header. A mismatch is certain (2^-160
 *   by chance): another key. It refuses the connection at once instead of
 *   waiting for its inbound upgrade timeout;
 * - the dialer, whose peer answers nothing until it has read a valid header,
 *   sees the peer close the connection right after the nonce exchange (the
 *   peer's own guard refused it) or receives noise (a peer without the guard
 *   answering `na`). Either way it fails the dial with a `SwarmKeyMismatchError`
 *   message that names the key file, instead of a timeout.
 *
 * Every refusal is reported once through `onRefused` (the daemon logs and
 * counts it). Once the header checks out, the guard takes itself off the
 * stream: no cost on the data path.
 */
import { preSharedKey } from '@libp2p/pnet'
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** What a libp2p peer sends first on a protected connection: the length-prefixed multistream-select protocol id. */
export const MSS_HEADER: Uint8Array = new Uint8Array([0x13, ...new TextEncoder().encode('/multistream/1.0.0\n')])

export interface PnetRefusal {
  /** Who opened the TCP connection: `outbound` is this node dialling. */
  direction: 'inbound' | 'outbound'
  /** The peer's transport address (ip and port), e.g. /ip4/10.0.1.7/tcp/51234. */
  remoteAddr: string
  reason: 'swarm_key'
  /** What was seen, for the log. */
  detail: string
}

export interface GuardedPnetInit {
  /** The swarm key, as the text of a pnet key file (mesh/swarm-key.ts). */
  psk: Uint8Array
  /** The file it was read from, named in the error a dialer sees. */
  keyFile: string
  onRefused?: (r: PnetRefusal) => void
}

/** The error a dial fails with when the peer's swarm key differs (its message survives libp2p's upgrader, which rewraps errors by message). */
export class SwarmKeyMismatchError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'SwarmKeyMismatchError'
  }
}

/** Marks the message of a dial that failed on a swarm key mismatch (the error class itself does not survive the upgrader). */
export const SWARM_KEY_MISMATCH = 'the private network handshake failed'

export function isSwarmKeyMismatch (err: unknown): boolean {
  return err instanceof Error && err.message.includes(SWARM_KEY_MISMATCH)
}

export type HeaderVerdict = 'pending' | 'ok' | 'mismatch'

/**
 * Pure: the verdict on the first decrypted bytes, `seen` bytes of which were
 * already checked. Returns the verdict and how many bytes are now checked.
 */
export function checkHeader (chunk: Uint8Array, seen: number): { verdict: HeaderVerdict, seen: number } {
  let i = 0
  while (i < chunk.byteLength && seen < MSS_HEADER.byteLength) {
    if (chunk[i] !== MSS_HEADER[seen]) return { verdict: 'mismatch', seen }
    i++
    seen++
  }
  return { verdict: seen === MSS_HEADER.byteLength ? 'ok' : 'pending', seen }
}

/** The parts of pnet's stream (an AbstractMessageStream) the guard hooks while it waits for the header. */
interface Hookable {
  onData: (data: Uint8Array | Uint8ArrayList) => void
  onRemoteReset: () => void
  onTransportClosed: (err?: Error) => void
  abort: (err: Error) => void
}
const HOOKS = ['onData', 'onRemoteReset', 'onTransportClosed', 'abort'] as const

function hookable (s: MessageStream): (MessageStream & Hookable) | null {
  const h = s as MessageStream & Partial<Hookable>
  return HOOKS.every((k) => typeof h[k] === 'function') ? h as MessageStream & Hookable : null
}

/** A socket error that means the peer reset the connection (not our own abort or timeout). */
function isPeerReset (err: Error | undefined): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED'
}

class GuardedPnet implements ConnectionProtector {
  private readonly inner: ConnectionProtector
  private readonly init: GuardedPnetInit

  constructor (init: GuardedPnetInit) {
    this.init = init
    this.inner = preSharedKey({ psk: init.psk })()
  }

  readonly [Symbol.toStringTag] = 'meshd/guarded-pnet'

  async protect (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    // The nonce exchange: a failure here (closed, timed out) is not about the key.
    const stream = await this.inner.protect(connection, options)
    const s = hookable(stream)
    // pnet's stream is not what it was when this was written: no guard, plain
    // pnet (test/mesh/pnet-guard.test.ts fails first).
    if (s === null) return stream
    this.watch(s, stream.direction === 'outbound' ? 'outbound' : 'inbound', String((stream as { remoteAddr?: unknown }).remoteAddr ?? 'unknown'))
    return stream
  }

  private watch (s: MessageStream & Hookable, direction: 'inbound' | 'outbound', remoteAddr: string): void {
    const proto = Object.getPrototypeOf(s) as Hookable
    let seen = 0
    let settled = false
    const unhook = (): void => {
      settled = true
      // Back to the prototype's methods: the guard costs nothing afterwards.
      for (const k of HOOKS) delete (s as Partial<Hookable>)[k]
    }
    const mismatch = (detail: string): Error => {
      unhook()
      this.init.onRefused?.({ direction, remoteAddr, reason: 'swarm_key', detail })
      return new SwarmKeyMismatchError(`connected to ${remoteAddr}, but ${SWARM_KEY_MISMATCH} (${detail}): the peer most likely uses a different swarm key than ${this.init.keyFile}; copy the mesh's swarm.key to this host`)
    }
    /** Checks decrypted bytes; false when they are noise (the stream is then aborted). */
    const check = (data: Uint8Array | Uint8ArrayList): boolean => {
      for (const chunk of chunksOf(data)) {
        const r = checkHeader(chunk, seen)
        seen = r.seen
        if (r.verdict === 'mismatch') {
          proto.abort.call(s, mismatch('the first bytes did not decrypt to a libp2p handshake'))
          return false
        }
        if (r.verdict === 'ok') { unhook(); break }
      }
      return true
    }
    // pnet may have decrypted the first bytes already (they came with the
    // nonce): they wait in the stream's read buffer for its first reader.
    const buffered = (s as unknown as { readBuffer?: Uint8ArrayList }).readBuffer
    if (buffered !== undefined && buffered.byteLength > 0 && !check(buffered)) return
    if (settled) return
    s.onData = (data) => { if (check(data)) proto.onData.call(s, data) }
    // Only the dialer reads a close before any byte as a verdict: its peer
    // answers nothing until it has checked our header, so a close or a reset
    // right after the nonces is that peer refusing us. Our own abort (a dial
    // timeout) is not. A listener whose dialer goes away early has merely
    // lost a dial that was cancelled.
    const refusedByPeer = (): boolean => !settled && direction === 'outbound'
    s.onRemoteReset = () => {
      if (refusedByPeer()) proto.abort.call(s, mismatch('the peer reset the connection right after the nonce exchange'))
      else proto.onRemoteReset.call(s)
    }
    s.onTransportClosed = (err) => {
      if (refusedByPeer()) proto.abort.call(s, mismatch('the peer closed the connection right after the nonce exchange'))
      else proto.onTransportClosed.call(s, err)
    }
    s.abort = (err) => {
      if (refusedByPeer() && isPeerReset(err)) proto.abort.call(s, mismatch('the peer reset the connection right after the nonce exchange'))
      else { unhook(); proto.abort.call(s, err) }
    }
  }
}

function chunksOf (data: Uint8Array | Uint8ArrayList): Iterable<Uint8Array> {
  return data instanceof Uint8Array ? [data] : data
}

/** libp2p's `connectionProtector`: pnet with the swarm key, plus the guard above. */
export function guardedPreSharedKey (init: GuardedPnetInit): () => ConnectionProtector {
  return () => new GuardedPnet(init)
}
