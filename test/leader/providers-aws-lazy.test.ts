/**
 * A config with an aws provider builds without loading the AWS SDK (seconds
 * of start-up on a small machine); the SDK is loaded on the provider's first
 * call. Checked in a child Node whose module resolve hook records every
 * @aws-sdk module. The endpoint is a closed loopback port: nothing leaves
 * the machine.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { writeFileSync } from 'node:fs'
import { tempDir } from '../helpers/tmp.ts'
import { AWS_TEST_ENV } from '../helpers/aws-env.ts'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

t.test('kind: aws is built without the SDK; the first call loads it', async (t) => {
  const dir = tempDir(t, 'meshd-lazy-')
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
  const script = join(dir, 'check.mjs')
  writeFileSync(script, `
import { registerHooks } from 'node:module'
const seen = []
registerHooks({ resolve (spec, ctx, next) { const r = next(spec, ctx); if (r.url.includes('/@aws-sdk/')) seen.push(r.url); return r } })
const { buildProviders } = await import(${JSON.stringify(join(root, 'daemon/leader/providers.ts'))})
const { configSchema } = await import(${JSON.stringify(join(root, 'daemon/config/schema.ts'))})
const cfg = configSchema.parse({ cluster: 'c', providers: [{ name: 'a', kind: 'aws', regions: ['us-east-1'], instance_types: ['t3.micro'], image_id: 'ami-1', zones: { 'us-east-1': ['us-east-1a'] }, endpoint: 'http://127.0.0.1:${port}', replica: { models: ['m'] } }] })
const p = buildProviders(cfg).get('a')
const afterBuild = seen.length
const offerings = await p.offerings()
console.log(JSON.stringify({ afterBuild, afterCall: seen.length, kind: p.kind, offerings: offerings.map((o) => [o.zone, o.instanceType, o.spot, o.pricePerHour]) }))
`)
  const r = await run(process.execPath, [script], { env: { ...process.env, ...AWS_TEST_ENV }, timeout: 60_000 })
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { afterBuild: number, afterCall: number, kind: string, offerings: unknown[] }
  t.equal(out.afterBuild, 0, 'no @aws-sdk module resolved by building the providers')
  t.ok(out.afterCall > 0, `loaded on the first call (${out.afterCall} modules)`)
  t.equal(out.kind, 'aws')
  t.same(out.offerings, [['us-east-1a', 't3.micro', false, 0.0104]], 'spot prices unreachable: on-demand from the table only')
})
