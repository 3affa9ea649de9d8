/**
 * Burst processes launched by the local provider in end-to-end tests: they
 * are detached (they outlive their launcher), so a test reaps them itself.
 */
import { join } from 'node:path'
import { readdirSync } from 'node:fs'
import { readManifest } from '../../providers/local/manifest.ts'
import { isOurProcess } from '../../providers/local/liveness.ts'
import type { Teardown } from './tmp.ts'
import type { MemberStatus, StatusDocument } from '../../daemon/status.ts'
import { waitFor } from '../../daemon/localmesh/poll.ts'

/** Kills every burst process recorded under `workDir` at teardown (also when the test fails). */
export function reapBurst (t: Teardown, workDir: string): void {
  t.teardown(() => {
    let names: string[] = []
    try { names = readdirSync(workDir) } catch {}
    for (const n of names) {
      const m = readManifest(join(workDir, n))
      if (m?.pid != null) { try { process.kill(-m.pid, 'SIGKILL') } catch {} try { process.kill(m.pid, 'SIGKILL') } catch {} }
    }
  })
}

/** Keys of the burst processes under `workDir` that are still running. */
export function runningBurst (workDir: string): string[] {
  let names: string[] = []
  try { names = readdirSync(workDir) } catch {}
  return names.map((n) => readManifest(join(workDir, n))).filter((m) => m !== null && isOurProcess(m.pid, m.config)).map((m) => m!.key)
}

/** Burst members that serve now: alive, replica ready, not draining. */
export function readyBurst (s: StatusDocument): MemberStatus[] {
  return s.members.filter((m) => m.burst === true && m.state === 'alive' && m.replica?.ready === true && !m.draining)
}

/** Waits until `viewer` sees exactly `n` burst members serving; resolves to them. */
export async function waitReadyBurst (viewer: { status: () => Promise<StatusDocument> }, n: number, timeoutMs = 120_000): Promise<MemberStatus[]> {
  const { value } = await waitFor(async () => {
    const b = readyBurst(await viewer.status())
    return b.length === n ? b : null
  }, { timeoutMs, what: `${n} burst member(s) alive and ready` })
  return value
}

/** Sends `clients` × `each` chat completions through a front door; the member ids that served them. */
export async function servedBy (frontDoor: string, clients = 16, each = 4): Promise<Set<string>> {
  const { default: OpenAI } = await import('openai')
  const client = new OpenAI({ baseURL: `${frontDoor}/v1`, apiKey: 'x', maxRetries: 0 })
  const served = new Set<string>()
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let i = 0; i < each; i++) {
      const { response } = await client.chat.completions.create({ model: 'llama3', messages: [{ role: 'user', content: 'hi' }] }).withResponse()
      served.add(response.headers.get('x-meshd-served-by') ?? '')
    }
  }))
  return served
}
