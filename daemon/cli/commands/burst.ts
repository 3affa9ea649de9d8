import { randomUUID } from 'node:crypto'
import { CommandFailed, parseCommandArgs, UsageError } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'
import { requestIdPattern } from '../../leader/ledger/entries.ts'

export const help = `usage: meshd burst --count N [--provider P] [--spot | --on-demand] [--wait] [--request-id ID] [--json]
       meshd burst --terminate [--count N | --all] [--provider P] [--request-id ID] [--json]

Asks the leader (from any node; the request travels over the mesh) for N more
burst replicas, and prints its decision: granted, cut to K (by cost_budget,
max_cloud_instances or a provider's max_instances, named in the reason), or
refused (no leader, budget, no provider ...). Placement fills the cheapest
provider with room first. With --wait, shows each new replica moving through
provisioning → starting → ready until all are ready or failed.

--terminate drains and releases burst replicas (the least useful first).

Every request carries a request id (--request-id ID, else a fresh one), the
leader's idempotency key: a request id it has already decided gets that
decision again and launches or releases nothing more. When the leader took
the request but no answer came back (it died mid-request), the outcome is
unknown: the command says so, with the id, and exits 3; see \`meshd status\`
and the leader's log for the id, or repeat the command with --request-id ID
to get the decision without doubling it.

Exit status 0 when granted or cut, 1 when refused or when no leader answered,
3 when the outcome is unknown (see above).`

/** The leader may have acted on the request, though no answer came back. */
export const EXIT_OUTCOME_UNKNOWN = 3
const UNKNOWN_CODES = new Set(['outcome_unknown', 'no_answer', 'timeout'])

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('burst', argv, {
    count: { type: 'string' },
    provider: { type: 'string' },
    spot: { type: 'boolean', default: false },
    'on-demand': { type: 'boolean', default: false },
    wait: { type: 'boolean', default: false },
    terminate: { type: 'boolean', default: false },
    all: { type: 'boolean', default: false },
    'request-id': { type: 'string' }
  })
  const requestId = values['request-id'] ?? `r-${randomUUID()}`
  if (!requestIdPattern.test(requestId)) throw new UsageError(`burst: --request-id must be letters, digits and ._:/@- (at most 128, starting with a letter or digit), got "${requestId}"`)
  const retry = ['meshd', 'burst', ...argv.filter((a, i) => a !== '--request-id' && argv[i - 1] !== '--request-id' && !a.startsWith('--request-id=')), '--request-id', requestId].join(' ')
  const unknown = (err: unknown): number => {
    if (!(err instanceof CommandFailed) || err.code === undefined || !UNKNOWN_CODES.has(err.code)) throw err
    if (values.json) {
      printJson({ decision: 'unknown', request_id: requestId, reason: err.message })
    } else {
      process.stderr.write([
        `meshd: burst${values.terminate ? ' --terminate' : ''}: outcome unknown: ${err.message}.`,
        `  It may have been carried out. Request id: ${requestId}`,
        '  To see: `meshd status` (burst members as they start or drain), and the leader\'s log for the request id.',
        `  To retry without doubling it: ${retry}`,
        '  (the leader answers a request id it has decided with that decision, and acts on it once)'
      ].join('\n') + '\n')
    }
    return EXIT_OUTCOME_UNKNOWN
  }
  const count = values.count === undefined ? undefined : Number(values.count)
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new UsageError(`burst: --count must be a positive integer, got "${values.count}"`)
  if (values.spot && values['on-demand']) throw new UsageError('burst: --spot and --on-demand exclude each other')
  const config = configFor(values.config)
  if (values.terminate) {
    if (count === undefined && !values.all) throw new UsageError('burst --terminate: say --count N or --all')
    if (count !== undefined && values.all) throw new UsageError('burst --terminate: --count and --all exclude each other')
    let r: { answer: BurstAnswer }
    try {
      r = await call(config, 'terminate', { request_id: requestId, ...(count !== undefined ? { count } : {}), all: values.all, ...(values.provider !== undefined ? { provider: values.provider } : {}) }, { timeoutMs: 90_000 }) as { answer: BurstAnswer }
    } catch (err) {
      return unknown(err)
    }
    return report(r.answer, values.json, 'terminate')
  }
  if (values.all) throw new UsageError('burst: --all goes with --terminate')
  if (count === undefined) throw new UsageError('burst: --count N is required (see `meshd burst --help`)')
  const params: Record<string, unknown> = { request_id: requestId, count, wait: values.wait }
  if (values.provider !== undefined) params.provider = values.provider
  if (values.spot) params.spot = true
  if (values['on-demand']) params.spot = false
  const start = Date.now()
  let r: { answer: BurstAnswer, instances?: Array<{ key: string, state: string }> }
  try {
    r = await call(config, 'burst', params, {
      timeoutMs: values.wait ? 25 * 60_000 : 90_000,
      onEvent: (e) => {
        if (values.json) return
        if (typeof e.warning === 'string') { process.stderr.write(`  ${e.warning}\n`); return }
        const t = ((Date.now() - start) / 1000).toFixed(1).padStart(6)
        process.stdout.write(`  [${t}s] ${String(e.key)}  ${String(e.state)}${e.reason !== undefined && e.reason !== '' ? `  (${String(e.reason)})` : ''}\n`)
      }
    }) as typeof r
  } catch (err) {
    return unknown(err)
  }
  if (values.json) {
    const { id: _id, ...doc } = r.answer
    printJson(r.instances === undefined ? doc : { ...doc, states: r.instances })
    return r.answer.decision === 'refused' || (r.instances?.some((i) => i.state !== 'ready') ?? false) ? 1 : 0
  }
  const code = report(r.answer, false, 'burst')
  if (r.instances !== undefined) {
    const ready = r.instances.filter((i) => i.state === 'ready').length
    process.stdout.write(`${ready} of ${r.instances.length} ready\n`)
    if (ready < r.instances.length) return 1
  }
  return code
}

interface BurstAnswer { id?: string, requested: number, granted: number, decision: 'granted' | 'cut' | 'refused', reason: string, provider: string | null, instances: string[] }

function report (a: BurstAnswer, json: boolean, what: 'burst' | 'terminate'): number {
  const { id: _id, ...doc } = a
  if (json) {
    printJson(doc)
    return a.decision === 'refused' ? 1 : 0
  }
  const verb = what === 'burst' ? 'burst' : 'terminate'
  const line = a.decision === 'granted'
    ? `${verb}: granted ${a.granted} of ${a.requested}${a.provider !== null ? ` on ${a.provider}` : ''}${a.reason !== '' ? ` (${a.reason})` : ''}`
    : a.decision === 'cut'
      ? `${verb}: cut to ${a.granted} of ${a.requested}${a.provider !== null ? ` on ${a.provider}` : ''}: ${a.reason}`
      : `${verb}: refused: ${a.reason}`
  process.stdout.write(line + '\n')
  for (const k of a.instances) process.stdout.write(`  ${k}\n`)
  return a.decision === 'refused' ? 1 : 0
}
