// CLI entry of the simulated engine, spawned by the replica supervisor in place
// of llama.cpp's server or vLLM.
//
// stdout carries the protocol and nothing else: exactly one line,
// {"event":"listening","port":P}, once the port accepts connections. Logs are
// JSON lines (pino, same shape as the daemon's) on stderr.
//
// Signals: the first SIGTERM/SIGINT drains (new requests get 503, queued and
// running ones finish), then the process exits 0; a second one exits 0 at once.
// Exit 2 means bad flags, 1 that the server could not start.

import { pino } from 'pino'
import { parseCli, usage, UsageError, type CliOptions } from './options.ts'
import { startSimServer } from './server.ts'

function parse(): CliOptions {
  try {
    return parseCli(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`meshd sim: ${err.message}\n${usage()}\n`)
    process.exit(2)
  }
}

const cli = parse()
if (cli.help) {
  process.stdout.write(`${usage()}\n`)
  process.exit(0)
}
const opts = cli.options

const log = pino(
  {
    level: cli.logLevel,
    base: { pid: process.pid, component: 'replica-sim', name: opts.name },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  },
  // Synchronous, so the last lines before process.exit are not lost.
  pino.destination({ fd: 2, sync: true }),
)

// A supervisor that stops reading stdout must not crash us with EPIPE.
process.stdout.on('error', () => {})

let server
try {
  server = await startSimServer({ ...opts, log })
} catch (err) {
  log.fatal({ err: (err as Error).message, host: opts.host, port: opts.port }, 'could not listen')
  process.exit(1)
}
const sim = server

let signals = 0
function onSignal(signal: NodeJS.Signals): void {
  signals++
  if (signals > 1) {
    log.warn({ signal, inflight: sim.stats().inflight }, 'second signal: exiting now')
    process.exit(0)
  }
  log.info({ signal }, 'signal received')
  sim.drain().then(
    () => {
      log.info({ completed: sim.stats().completed }, 'drained')
      process.exit(0)
    },
    (err: unknown) => {
      log.error({ err: String(err) }, 'drain failed')
      process.exit(1)
    },
  )
}
process.on('SIGTERM', onSignal)
process.on('SIGINT', onSignal)

process.stdout.write(`${JSON.stringify({ event: 'listening', port: sim.port })}\n`)
log.info(
  {
    url: sim.url,
    models: opts.models,
    slots: opts.slots,
    queue_limit: opts.queueLimit,
    ttft_ms: opts.ttftMs,
    tokens_per_second: opts.tokensPerSecond,
    max_tokens: opts.maxTokens,
  },
  'listening',
)
