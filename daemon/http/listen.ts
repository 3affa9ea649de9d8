/** Parses `host:port` (IPv6 in brackets) for http.listen. */
export function parseHostPort (text: string): { host: string, port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d+)$/.exec(text)
  if (m === null) throw new Error(`expected host:port, got ${JSON.stringify(text)}`)
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) }
}
