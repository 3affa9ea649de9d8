/**
 * The parse worker: checks large request bodies (body-check.ts) off the main
 * thread, so that parsing ten megabytes of hostile JSON (hundreds of
 * milliseconds for a million keys) never delays the membership heartbeats and
 * election timers that run there. Messages are the plain objects typed in
 * body-parser.ts; both ends are this build, in one process.
 */
import { parentPort } from 'node:worker_threads'
import { checkBody } from './body-check.ts'
import type { ParseJob, ParseDone } from './body-parser.ts'

const port = parentPort
if (port === null) throw new Error('parse-worker.ts runs as a worker thread')
port.on('message', (job: ParseJob) => {
  const done: ParseDone = { id: job.id, result: checkBody(job.bytes, job.path) }
  port.postMessage(done)
})
