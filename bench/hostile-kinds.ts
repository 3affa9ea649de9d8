/**
 * The worst requests we know, as raw HTTP/1.1 over plain sockets, for the
 * flood test (test/e2e/hostile-flood.test.ts) and bench/hostile.ts. Every
 * body is built once and sent again and again; each request is on its own
 * connection (`Connection: close`) and is over when the server closes it.
 * Bodies aim just under the default http.max_body_bytes (10 MiB) and name a
 * model nobody serves, so what is measured is the front door, not a replica.
 */
import { connect, type Socket } from 'node:net'

export const KINDS = ['deep', 'keys', 'ints', 'max_body', 'bad_utf8', 'huge_headers', 'over_declared', 'many_small'] as const
export type Kind = typeof KINDS[number]

const SIZE = 10_000_000

/** The request bytes of each kind (built lazily, kept). */
const built = new Map<Kind, Buffer[]>()

function head (path: string, length: number, extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nHost: meshd\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\nConnection: close\r\n${extra}\r\n`
}

function withBody (body: Buffer, extra = ''): Buffer[] {
  return [Buffer.from(head('/v1/chat/completions', body.length, extra)), body]
}

function build (kind: Kind): Buffer[] {
  switch (kind) {
    case 'deep': // depth 10⁷, unclosed: 0.5 s in JSON.parse
      return withBody(Buffer.alloc(SIZE, '['))
    case 'keys': { // ~900,000 keys in one object: 0.8 s in JSON.parse
      const parts = ['{"model":"nobody-serves-this","messages":[{"role":"user","content":"x"}]']
      let n = parts[0]!.length
      for (let i = 0; n < SIZE - 20; i++) { const p = `,"k${i}":1`; parts.push(p); n += p.length }
      parts.push('}')
      return withBody(Buffer.from(parts.join('')))
    }
    case 'ints': { // ~5,000,000 array elements
      const count = Math.floor((SIZE - 200) / 2)
      const body = Buffer.alloc(SIZE, ',')
      const pre = Buffer.from('{"model":"nobody-serves-this","messages":[{"role":"user","content":"x"}],"logit_bias":[0')
      pre.copy(body)
      for (let i = pre.length; i < pre.length + count * 2; i += 2) body[i + 1] = 0x30
      const tail = Buffer.from(']}')
      const end = pre.length + count * 2
      tail.copy(body, end)
      return withBody(body.subarray(0, end + tail.length))
    }
    case 'max_body': // one long prompt: valid, large, cheap to parse
      return withBody(Buffer.from(JSON.stringify({ model: 'nobody-serves-this', messages: [{ role: 'user', content: 'x'.repeat(SIZE - 100) }] })))
    case 'bad_utf8': { // a string of invalid UTF-8 bytes
      const body = Buffer.alloc(SIZE, 0xff)
      Buffer.from('{"model":"nobody-serves-this","messages":[{"role":"user","content":"').copy(body)
      Buffer.from('"}]}').copy(body, SIZE - 4)
      return withBody(body)
    }
    case 'huge_headers': // just under and well over Node's 16 KiB header limit
      return [Buffer.from(head('/v1/chat/completions', 2, `x-fill: ${'a'.repeat(15_000)}\r\n`) + '{}'), Buffer.from(head('/v1/chat/completions', 2, `x-fill: ${'a'.repeat(60_000)}\r\n`) + '{}')]
    case 'over_declared': // a Content-Length far above the limit, then the body anyway
      return [Buffer.from(head('/v1/chat/completions', 1 << 30)), Buffer.alloc(4 << 20, 0x20)]
    case 'many_small': { // 2,000 keep-alive requests on one connection
      const body = '{"model":"nobody-serves-this","messages":[{"role":"user","content":"x"}]}'
      const one = `POST /v1/chat/completions HTTP/1.1\r\nHost: meshd\r\nContent-Length: ${body.length}\r\n\r\n${body}`
      return [Buffer.from(one.repeat(1999) + one.replace('Host: meshd\r\n', 'Host: meshd\r\nConnection: close\r\n'))]
    }
  }
}

export function requestBytes (kind: Kind): Buffer[] {
  let b = built.get(kind)
  if (b === undefined) { b = build(kind); built.set(kind, b) }
  return b
}

/** Sends one request of `kind`; resolves when the server closes (or after `timeoutMs`), with the status line. */
export function send (port: number, kind: Kind, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let first = ''
    const timer = setTimeout(() => { s.destroy() }, timeoutMs)
    s.on('data', (d: Buffer) => { if (first.length < 16) first += d.toString('latin1', 0, 16) })
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve(first.slice(0, 12) || 'no answer') })
    s.on('connect', () => { for (const b of requestBytes(kind)) s.write(b) })
  })
}

/** Requests of the given kinds in turn on `workers` connections at once, until `signal`; counts answers by status line. */
export async function flood (port: number, kinds: readonly Kind[], workers: number, signal: AbortSignal): Promise<Map<string, number>> {
  const seen = new Map<string, number>()
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    for (let i = w; !signal.aborted; i++) {
      const kind = kinds[i % kinds.length]!
      const status = await send(port, kind)
      seen.set(`${kind} ${status}`, (seen.get(`${kind} ${status}`) ?? 0) + 1)
    }
  }))
  return seen
}

/** `count` connections that send a request head one byte per `everyMs` (slowloris); closed by the returned function. */
export function slowConnections (port: number, count: number, everyMs = 1000): () => void {
  const text = 'POST /v1/chat/completions HTTP/1.1\r\nHost: meshd\r\nX-Slow: ' + 'a'.repeat(10_000)
  const sockets: Array<{ s: Socket, at: number }> = []
  for (let i = 0; i < count; i++) {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    sockets.push({ s, at: 0 })
  }
  const timer = setInterval(() => {
    for (const c of sockets) {
      if (c.s.destroyed || c.at >= text.length) continue
      c.s.write(text[c.at++]!)
    }
  }, everyMs)
  return () => { clearInterval(timer); for (const c of sockets) c.s.destroy() }
}
