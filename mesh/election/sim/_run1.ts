import { runChaos } from '/work/main/mesh/election/sim/chaos.ts'
const n = Number(process.argv[2] ?? 20)
const start = Number(process.argv[3] ?? 1)
const t0 = performance.now()
let fails = 0
for (let s = start; s < start + n; s++) {
  try {
    const r = runChaos({ seed: s })
    if (n <= 5) console.log(JSON.stringify(r))
  } catch (e) { fails++; console.log('seed', s, (e as Error).message) ; if (fails > 5) break }
}
console.log('ms/seed', ((performance.now() - t0) / n).toFixed(1))
