/**
 * bench/bundle: meshd from a bundle (`meshd bundle`, unpacked away from the
 * checkout) side by side with this checkout (TypeScript run by Node's type
 * stripping): `meshd status` wall time (cold compile cache, then warm),
 * a daemon's start until its admin socket answers
 * and until its front door serves a chat completion from the simulator, the
 * daemon's RSS at rest, and the bundle's size. Rounds alternate the two, and
 * each figure is the median over rounds. Figures, never pass/fail.
 *
 *   node_modules/.bin/node bench/bundle.ts [--rounds 3] [--status-runs 10] [--rest-seconds 10] [--bundle FILE]
 */
import { execFileSync, spawn } from 'node:child_process'
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { MeshdProcess } from '../daemon/localmesh/meshd-process.ts'
import { waitFor } from '../daemon/localmesh/poll.ts'
import { MESHD_BIN } from '../daemon/localmesh/meshd-process.ts'
import { median, fmtMs } from './stats.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, 'status-runs': { type: 'string', default: '10' }, 'rest-seconds': { type: 'string', default: '10' }, bundle: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
if (values.help === true) {
  console.log('usage: node_modules/.bin/node bench/bundle.ts [--rounds 3] [--status-runs 10] [--rest-seconds 10] [--bundle FILE]  (default: builds one for this machine)')
  process.exit(0)
}
const rounds = Number(values.rounds)
const statusRuns = Number(values['status-runs'])
const restMs = Number(values['rest-seconds']) * 1000

const work = mkdtempSync(join(tmpdir(), 'meshd-bench-bundle-'))
const daemons = new Set<MeshdProcess>()
process.on('exit', () => { for (const d of daemons) d.killGroup(); rmSync(work, { recursive: true, force: true }) })
process.on('SIGINT', () => { process.exit(130) })

/** Wall time of one CLI call, with its own compile cache dir. */
function timed (bin: string, args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
    child.on('error', reject)
    child.on('close', (code) => { code === 0 ? resolve(performance.now() - start) : reject(new Error(`${bin} ${args.join(' ')}: exit ${code}: ${err}`)) })
  })
}

// The bundle: built here unless given.
let archive = values.bundle
let buildMs = NaN
if (archive === undefined) {
  archive = join(work, 'meshd.tar.gz')
  process.stderr.write('bundle: building one for this machine\n')
  const t0 = performance.now()
  execFileSync(MESHD_BIN, ['bundle', '--out', archive], { stdio: ['ignore', 'ignore', 'inherit'] })
  buildMs = performance.now() - t0
}
const install = join(work, 'install')
mkdirSync(install)
execFileSync('tar', ['-xzf', archive, '--strip-components=1', '-C', install])
const unpackedBytes = Number(execFileSync('du', ['-sb', install], { encoding: 'utf8' }).split('\t')[0])

const variants = [
  { name: 'checkout', bin: MESHD_BIN },
  { name: 'bundle', bin: join(install, 'bin', 'meshd') }
]

interface Sample { statusCold: number, statusWarm: number, adminUp: number, servesChat: number, rssMb: number }
const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]))

function rssMb (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? NaN : Number(m[1]) / 1024
}

async function chatOk (http: string): Promise<boolean> {
  try {
    const r = await fetch(`http://${http}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }) })
    await r.arrayBuffer()
    return r.status === 200
  } catch {
    return false
  }
}

for (let round = 0; round < rounds; round++) {
  for (const v of variants) {
    process.stderr.write(`bundle: round ${round + 1}/${rounds}, ${v.name}\n`)
    const dir = join(work, `${v.name}-${round}`)
    mkdirSync(dir)
    const config = join(dir, 'meshd.yaml')
    const socket = join(dir, 'admin.sock')
    const env = { NODE_COMPILE_CACHE: join(dir, 'compile-cache'), HOME: dir }
    execFileSync(v.bin, ['init', '--config', config, '--state-dir', join(dir, 'state'), '--cluster', 'bench', '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0'], { env: { ...process.env, ...env }, stdio: 'ignore' })
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^ {2}socket: .*$/m, `  socket: ${socket}`))
    appendFileSync(config, '\nreplica:\n  models: [m]\n  slots: 2\n  command: sim\nlog:\n  level: warn\n')

    const d = new MeshdProcess({ name: v.name, configPath: config, socket, bin: v.bin, env, startTimeoutMs: 60_000 })
    daemons.add(d)
    const t0 = performance.now()
    const info = await d.start()
    const adminUp = performance.now() - t0
    await waitFor(() => chatOk(info.http), { timeoutMs: 60_000, intervalMs: 20, what: `${v.name}: a chat completion through the front door` })
    const servesChat = performance.now() - t0

    // The CLI against a running daemon: first call with an empty compile cache, then warm.
    const statusCold = await timed(v.bin, ['status', '--config', config], env)
    const warm: number[] = []
    for (let i = 0; i < statusRuns; i++) warm.push(await timed(v.bin, ['status', '--config', config], env))

    // At rest: nothing asked of it for restMs; the median of one sample a second.
    const rss: number[] = []
    const restUntil = Date.now() + restMs
    while (Date.now() < restUntil) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      rss.push(rssMb(d.pid!))
    }
    await d.stop(10_000)
    daemons.delete(d)
    samples.get(v.name)!.push({ statusCold, statusWarm: median(warm), adminUp, servesChat, rssMb: median(rss) })
  }
}

const m = (name: string, k: keyof Sample): number => median(samples.get(name)!.map((s) => s[k]))
const row = (label: string, k: keyof Sample, fmt: (x: number) => string): string => `| ${label} | ${fmt(m('checkout', k))} | ${fmt(m('bundle', k))} |`
const mb = (x: number): string => `${x.toFixed(0)} MB`
console.log(`\nmeshd ${variants.map((v) => v.name).join(' vs ')}, ${rounds} rounds (medians)\n`)
console.log('| | checkout | bundle |')
console.log('|---|---:|---:|')
console.log(row('`meshd status` (cold compile cache)', 'statusCold', fmtMs))
console.log(row(`\`meshd status\` (warm, median of ${statusRuns})`, 'statusWarm', fmtMs))
console.log(row('start → admin socket answers', 'adminUp', fmtMs))
console.log(row('start → front door serves a chat completion (sim)', 'servesChat', fmtMs))
console.log(row(`daemon RSS at rest (${restMs / 1000} s)`, 'rssMb', mb))
console.log(`\nbundle: ${(statSync(archive).size / 1e6).toFixed(1)} MB compressed, ${(unpackedBytes / 1e6).toFixed(1)} MB unpacked${Number.isNaN(buildMs) ? '' : `, built in ${fmtMs(buildMs)}`}`)
