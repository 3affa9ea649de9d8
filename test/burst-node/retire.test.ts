import t from 'tap'
import { retireReason, type RetireInput } from '../../daemon/burst-node/retire.ts'

const base: RetireInput = { now: 1_000_000, launchedAt: 0, lastActivityAt: 990_000, lastVoterSeenAt: 999_000, ttlMs: 3_600_000, idleTimeoutMs: 60_000, lostMeshGraceMs: 120_000, busy: 0 }

t.test('burst node retirement, on a fake clock', async (t) => {
  const table: Array<[string, Partial<RetireInput>, RegExp | null]> = [
    ['young, busy recently, voters in sight', {}, null],
    ['ttl passed', { now: 3_600_000 }, /^ttl 3600 s passed$/],
    ['ttl 0 means never', { now: 1e12, ttlMs: 0, lastActivityAt: 1e12, lastVoterSeenAt: 1e12 }, null],
    ['idle past idle_timeout', { lastActivityAt: 940_000 }, /^idle for 60 s/],
    ['idle but a request is running', { lastActivityAt: 0, busy: 1 }, null],
    ['idle_timeout 0 means never', { lastActivityAt: 0, idleTimeoutMs: 0 }, null],
    ['no voter heard past the grace', { lastVoterSeenAt: 880_000 }, /^no voter heard for 120 s/],
    ['no voter heard, within the grace', { lastVoterSeenAt: 881_000 }, null]
  ]
  for (const [name, over, want] of table) {
    const got = retireReason({ ...base, ...over })
    if (want === null) t.equal(got, null, name)
    else t.match(got, want, name)
  }
})
