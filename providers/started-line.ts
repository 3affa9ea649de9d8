/**
 * A burst node's mesh address, from the "meshd started" line it logs (JSON):
 * its first TCP multiaddr with its peer id. Shared by the providers that
 * launch nodes (local reads its log file, ssh the line from the host).
 */
export function addressFromLog (text: string): string | null {
  for (const line of text.split('\n')) {
    if (!line.includes('"meshd started"')) continue
    try {
      const entry = JSON.parse(line) as { peer?: unknown, addrs?: unknown }
      const addrs = Array.isArray(entry.addrs) ? entry.addrs.filter((a): a is string => typeof a === 'string') : []
      const a = addrs.find((x) => x.includes('/tcp/')) ?? addrs[0]
      if (a === undefined) return null
      return a.includes('/p2p/') || typeof entry.peer !== 'string' ? a : `${a}/p2p/${entry.peer}`
    } catch {
      return null
    }
  }
  return null
}
