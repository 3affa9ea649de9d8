/**
 * JSON logs (pino) on stdout, one object per line, for journald and log
 * shippers. Levels from `log.level` (or MESHD_LOG_LEVEL).
 */
import { pino, type Logger } from 'pino'

export type Log = Logger

export function createLogger (level: string, bindings: Record<string, unknown> = {}): Log {
  return pino({
    level,
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) }
  })
}
