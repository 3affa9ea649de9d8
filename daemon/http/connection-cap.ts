/**
 * The HTTP server's connection cap (http.max_connections). Up to the cap a
 * connection is served. Past it, a connection is still read, so that it gets
 * an answer instead of a reset: 503 `too_many_connections` (and /health its
 * 503), then closed; and past the cap plus OVERFLOW_ANSWERED it is closed at
 * once, unread, so that a flood cannot take the descriptors the cap protects.
 * Refusals are logged at most once per LOG_EVERY_MS, with the count since.
 */
import type { Socket } from 'node:net'

/** Connections past the cap that still get a 503 before they are closed. */
const OVERFLOW_ANSWERED = 64
/** An over-cap connection must send its request within this long. */
export const OVERFLOW_TIMEOUT_MS = 2000
const LOG_EVERY_MS = 10_000

export type Admission = 'serve' | 'refuse' | 'drop'

export interface ConnectionCapComponents {
  log: { warn: (o: object, msg: string) => void }
  now?: () => number
}

export class ConnectionCap {
  readonly max: number
  private readonly c: ConnectionCapComponents
  private open = 0
  private refusedSinceLog = 0
  private lastLog = -Infinity
  /** Over-cap sockets: answered 503 whatever they ask. */
  private readonly over = new WeakSet<Socket>()

  constructor (max: number, components: ConnectionCapComponents) {
    this.max = max
    this.c = components
  }

  /** Counts a new connection (until it closes) and says what it gets. */
  admit (socket: Socket): Admission {
    this.open++
    socket.once('close', () => { this.open-- })
    if (this.open <= this.max) return 'serve'
    this.refused()
    if (this.open > this.max + OVERFLOW_ANSWERED) return 'drop'
    this.over.add(socket)
    return 'refuse'
  }

  /** Whether requests on this socket are to be refused (it came in past the cap). */
  refuses (socket: Socket): boolean {
    return this.over.has(socket)
  }

  /** Why the front door cannot take new connections now, or null. */
  problem (): string | null {
    return this.open >= this.max ? `at the connection cap: ${this.open} client connections open, http.max_connections is ${this.max}` : null
  }

  get connections (): number { return this.open }

  private refused (): void {
    this.refusedSinceLog++
    const now = (this.c.now ?? Date.now)()
    if (now - this.lastLog < LOG_EVERY_MS) return
    this.c.log.warn({ refused: this.refusedSinceLog, open: this.open, max_connections: this.max }, 'refusing HTTP connections: at http.max_connections')
    this.lastLog = now
    this.refusedSinceLog = 0
  }
}
