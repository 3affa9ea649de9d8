/**
 * A listen that fails at start, said in the operator's terms: the address and
 * the config key that named it ("address in use: 127.0.0.1:8080
 * (http.listen)"), exit 2, instead of node:net's or libp2p's own words (the
 * latter advises `transportManager.faultTolerance`, an option meshd does not
 * have) with a stack.
 */

/** A start-up failure the operator fixes in the config or on the host: exit 2. */
export class StartError extends Error {
  readonly exitCode = 2
  readonly key: string
  constructor (key: string, message: string) {
    super(message)
    this.name = 'StartError'
    this.key = key
  }
}

const CODES = ['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES'] as const
type ListenCode = typeof CODES[number]

function explain (code: ListenCode, addr: string, key: string): string {
  switch (code) {
    case 'EADDRINUSE': return `address in use: ${addr} (${key}); another process listens there (another meshd?): stop it or change ${key}`
    case 'EADDRNOTAVAIL': return `address not available on this host: ${addr} (${key}); use an address of one of its interfaces, or 0.0.0.0`
    case 'EACCES': return `permission denied to listen on ${addr} (${key}); ports below 1024 need root or CAP_NET_BIND_SERVICE`
  }
}

/**
 * The listen failures in `err`, as [code, address]: node:net's error (code,
 * address, port), or libp2p's UnsupportedListenAddressesError, which lists
 * each failed multiaddr with the error it got on a line of its message.
 */
export function listenFailures (err: unknown): Array<[ListenCode, string | null]> {
  const e = err as NodeJS.ErrnoException & { address?: string, port?: number }
  if (typeof e?.code === 'string' && (CODES as readonly string[]).includes(e.code)) {
    const addr = typeof e.address === 'string' ? (typeof e.port === 'number' ? `${e.address}:${e.port}` : e.address) : null
    return [[e.code as ListenCode, addr]]
  }
  const out: Array<[ListenCode, string | null]> = []
  const text = typeof e?.message === 'string' ? e.message : ''
  for (const m of text.matchAll(/^\s*(\/\S+): .*?\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/gm)) out.push([m[2] as ListenCode, m[1]!])
  return out
}

/** Runs a step that binds the addresses of config key `key`; its listen failures become a StartError. */
export async function binding<T> (key: string, addrs: readonly string[], step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    const failures = listenFailures(err)
    if (failures.length === 0) throw err
    throw new StartError(key, failures.map(([code, addr]) => explain(code, addr ?? addrs.join(', '), key)).join('; '))
  }
}
