/**
 * bench/book-poisoning: address-book poisoning over time (issue 12 item 6).
 * Two real daemons on loopback; a rogue key holder (test/helpers/book-poisoner.ts)
 * pushes each of them, every `--every-ms`, a sync-protocol address book of
 * 4,096 made-up members on loopback ports nobody listens on. Prints, per
 * interval, what each daemon dialled (meshd_dials_total, and the addresses
 * those dials may try: meshd_dial_addresses_total, where the daemon has it),
 * what it remembers (meshd_discovery_targets) and its RSS. Figures, never
 * pass/fail. Defaults: 10 minutes, a line per minute (the issue asks an hour:
 * --minutes 60).
 *
 *   node_modules/.bin/node bench/book-poisoning.ts [--minutes 10] [--interval-s 60] [--every-ms 250] [--members 4096] [--json out.json]
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { LocalCluster } from '../daemon/localmesh/cluster.ts'
import type { MeshdProcess } from '../daemon/localmesh/meshd-process.ts'
import { startPoisoner } from '../test/helpers/book-poisoner.ts'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    'interval-s': { type: 'string', default: '60' },
    'every-ms': { type: 'string', default: '250' },
    members: { type: 'string', default: '4096' },
    json: { type: 'string' }
  }
})
const durationMs = Number(values.minutes) * 60_000
const intervalMs = Number(values['interval-s']) * 1000

const cluster = new LocalCluster({ label: 'book-poisoning', cluster: 'bench', heartbeatMs: 1000 })
process.on('SIGINT', () => { cluster.kill(); process.exit(130) })
process.on('exit', () => { cluster.kill() })

interface Sample { dials: number, addrs: number | null, hints: number | null, peers: number | null, rssMb: number }

async function sample (p: MeshdProcess): Promise<Sample> {
  const text = await (await fetch(`http://${p.info!.http}/metrics`)).text()
  const sum = (name: string, label?: string): number | null => {
    let found = false
    let s = 0
    for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))) {
      if (label !== undefined && !(m[1] ?? '').includes(label)) continue
      found = true
      s += Number(m[2])
    }
    return found ? s : null
  }
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.pid!}/status`, 'utf8'))
  const hints = sum('meshd_discovery_targets', 'source="hint"')
  const members = sum('meshd_discovery_targets', 'source="member"')
  const remembered = sum('meshd_discovery_targets', 'source="remembered"')
  return {
    dials: sum('meshd_dials_total') ?? 0,
    addrs: sum('meshd_dial_addresses_total'),
    hints,
    peers: hints === null ? null : (hints + (members ?? 0) + (remembered ?? 0)),
    rssMb: rss === null ? 0 : Number(rss[1]) / 1024
  }
}

const nodes = await cluster.startAll([{ name: 'a' }, { name: 'b' }], { join: 'chain' })
const poisoner = await startPoisoner({
  swarmKeyFile: cluster.swarmKeyFile,
  cluster: 'bench',
  targets: nodes.map((n) => n.joinAddr),
  members: Number(values.members),
  everyMs: Number(values['every-ms'])
})
const fmt = (v: number | null, digits = 0): string => v === null ? '-' : v.toFixed(digits)
process.stdout.write(`poisoning ${nodes.length} daemons with books of ${values.members} made-up members every ${values['every-ms']} ms for ${values.minutes} min\n`)
process.stdout.write('t (s)  node  books  dials  dials/min  addrs/min  hints  peers  rss MB\n')
const started = Date.now()
let last = await Promise.all(nodes.map(sample))
let lastAt = started
let lastPushes = poisoner.pushes
const rows: Array<{ t: number, node: string, books: number, dialsPerMin: number, addrsPerMin: number | null, hints: number | null, peers: number | null, rssMb: number }> = []
while (Date.now() - started < durationMs) {
  await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, durationMs - (Date.now() - started))))
  const now = Date.now()
  const cur = await Promise.all(nodes.map(sample))
  const perMin = 60_000 / (now - lastAt)
  const books = poisoner.pushes - lastPushes
  nodes.forEach((n, i) => {
    const row = {
      t: Math.round((now - started) / 1000),
      node: n.init.name,
      books,
      dialsPerMin: (cur[i]!.dials - last[i]!.dials) * perMin,
      addrsPerMin: cur[i]!.addrs === null ? null : (cur[i]!.addrs! - last[i]!.addrs!) * perMin,
      hints: cur[i]!.hints,
      peers: cur[i]!.peers,
      rssMb: cur[i]!.rssMb
    }
    rows.push(row)
    process.stdout.write(`${String(row.t).padStart(5)}  ${row.node.padEnd(4)}  ${String(books).padStart(5)}  ${String(cur[i]!.dials).padStart(5)}  ${fmt(row.dialsPerMin, 1).padStart(9)}  ${fmt(row.addrsPerMin, 1).padStart(9)}  ${fmt(row.hints).padStart(5)}  ${fmt(row.peers).padStart(5)}  ${row.rssMb.toFixed(0).padStart(6)}\n`)
  })
  last = cur
  lastAt = now
  lastPushes = poisoner.pushes
}
await poisoner.stop()
await cluster.stop()
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ members: Number(values.members), everyMs: Number(values['every-ms']), rows }, null, 2))
