import { parseCommandArgs, UsageError } from '../common/command.ts'
import { call, configFor, printJson } from '../common/daemon-client.ts'

export const help = `usage: meshd burst --count N [--provider P] [--spot | --on-demand] [--wait] [--json]
       meshd burst --terminate [--count N | --all] [--provider P] [--json]

Asks the leader (from any node; the request travels over the mesh) for N more
burst replicas, and prints its decision: granted, cut to K (by cost_budget,
max_cloud_instances or a provider's max_instances, named in the reason), or
refused (no leader, budget, no provider ...). Placement fills the cheapest
provider with room first. With --wait, shows each new replica moving through
provisioning → starting → ready until all are ready or failed.

--terminate drains and releases burst replicas (the least useful first).
Exit status 0 when granted or cut, 1 when refused or when no leader answered.`

export async function run (argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('burst', argv, {
    count: { type: 'string' },
    provider: { type: 'string' },
    spot: { type: 'boolean', default: false },
    'on-demand': { type: 'boolean', default: false },
    wait: { type: 'boolean', default: false },
    terminate: { type: 'boolean', default: false },
    all: { type: 'boolean', default: false }
  })
  const count = values.count === undefined ? undefined : Number(values.count)
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new UsageError(`burst: --count must be a positive integer, got "${values.count}"`)
  if (values.spot && values['on-demand']) throw new UsageError('burst: --spot and --on-demand exclude each other')
  const config = configFor(values.config)
  if (values.terminate) {
    if (count === undefined && !values.all) throw new UsageError('burst --terminate: say --count N or --all')
    if (count !== undefined && values.all) throw new UsageError('burst --terminate: --count and --all exclude each other')
    const r = await call(config, 'terminate', { ...(count !== undefined ? { count } : {}), all: values.all, ...(values.provider !== undefined ? { provider: values.provider } : {}) }, { timeoutMs: 90_000 }) as { answer: BurstAnswer }
    return report(r.answer, values.json, 'terminate')
  }
  if (values.all) throw new UsageError('burst: --all goes with --terminate')
  if (count === undefined) throw new UsageError('burst: --count N is required (see `meshd burst --help`)')
  const params: Record<string, unknown> = { count, wait: values.wait }
  if (values.provider !== undefined) params.provider = values.provider
  if (values.spot) params.spot = true
  if (values['on-demand']) params.spot = false
  const start = Date.now()
  const r = await call(config, 'burst', params, {
    timeoutMs: values.wait ? 25 * 60_000 : 90_000,
    onEvent: (e) => {
      if (values.json) return
      if (typeof e.warning === 'string') { process.stderr.write(`  ${e.warning}\n`); return }
      const t = ((Date.now() - start) / 1000).toFixed(1).padStart(6)
      process.stdout.write(`  [${t}s] ${String(e.key)}  ${String(e.state)}${e.reason !== undefined && e.reason !== '' ? `  (${String(e.reason)})` : ''}\n`)
    }
  }) as { answer: BurstAnswer, instances?: Array<{ key: string, state: string }> }
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
