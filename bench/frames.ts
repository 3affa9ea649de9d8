/**
 * bench/frames: meshd's frame codec (mesh/infer/frames.ts: type byte + u32
 * length) against it-length-prefixed (libp2p's varint length prefix), side
 * by side on the same payloads cut at the same stream-chunk boundaries.
 * Figures, never pass/fail: encode + decode time per frame, median of rounds.
 *
 *   node_modules/.bin/node bench/frames.ts [--frames 100000] [--rounds 7]
 *
 * it-length-prefixed is a dependency of libp2p's own protocols (installed
 * with it), not of meshd.
 */
import { parseArgs } from 'node:util'
import * as lp from 'it-length-prefixed'
import { FrameDecoder, encodeFrame, FRAME } from '../mesh/infer/frames.ts'
import { median } from './stats.ts'

const { values } = parseArgs({ options: { frames: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '7' } } })
const N = Number(values.frames)
const ROUNDS = Number(values.rounds)

/** Deterministic payload sizes: mostly SSE-token-sized, some large bodies. */
function payloads (n: number): Uint8Array[] {
  let s = 7
  const rnd = (): number => { s = (s * 48271) % 2147483647; return s / 2147483647 }
  return Array.from({ length: n }, () => new Uint8Array(rnd() < 0.98 ? 80 + Math.floor(rnd() * 240) : 16_384 + Math.floor(rnd() * 48_000)).fill(97))
}

/** Cuts a byte stream into chunks of 1–16 KiB, as a muxer delivers it. */
function chunks (all: Uint8Array): Uint8Array[] {
  let s = 11
  const out: Uint8Array[] = []
  for (let at = 0; at < all.byteLength;) {
    s = (s * 48271) % 2147483647
    const n = 1024 + (s % (15 * 1024))
    out.push(all.subarray(at, at + n))
    at += n
  }
  return out
}

function concat (parts: Uint8Array[]): Uint8Array {
  const size = parts.reduce((a, p) => a + p.byteLength, 0)
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

const data = payloads(N)

/** Times encoding and decoding only: joining the frames into a stream and cutting it is not the codec's work. */
function meshd (): { ns: number, frames: number } {
  const t0 = process.hrtime.bigint()
  const encoded = data.map((p) => encodeFrame(FRAME.RES_BODY, p))
  const t1 = process.hrtime.bigint()
  const wire = chunks(concat(encoded))
  const t2 = process.hrtime.bigint()
  const d = new FrameDecoder()
  let frames = 0
  for (const c of wire) frames += d.push(c).length
  return { ns: Number(t1 - t0 + process.hrtime.bigint() - t2) / N, frames }
}

function itlp (): { ns: number, frames: number } {
  const t0 = process.hrtime.bigint()
  const encoded = data.map((p) => lp.encode.single(p).subarray())
  const t1 = process.hrtime.bigint()
  const wire = chunks(concat(encoded))
  const t2 = process.hrtime.bigint()
  let frames = 0
  for (const _ of lp.decode(wire)) frames++
  return { ns: Number(t1 - t0 + process.hrtime.bigint() - t2) / N, frames }
}

const results: Record<string, number[]> = { meshd: [], 'it-length-prefixed': [] }
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of [['meshd', meshd], ['it-length-prefixed', itlp]] as const) {
    const x = fn()
    if (x.frames !== N) throw new Error(`${name}: decoded ${x.frames} of ${N} frames`)
    if (r > 0) results[name]!.push(x.ns) // round 0 warms the JIT
  }
}
console.log(`### Frame codec: encode + decode, ${N} frames (98% 80–320 B, 2% 16–64 KiB), stream cut in 1–16 KiB chunks, median of ${ROUNDS - 1} rounds\n`)
console.log('| codec | ns per frame | relative |\n|---|---:|---:|')
const base = median(results.meshd!)
for (const [name, xs] of Object.entries(results)) console.log(`| ${name} | ${median(xs).toFixed(0)} | ${(median(xs) / base).toFixed(2)}× |`)
