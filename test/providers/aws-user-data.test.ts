/**
 * The EC2 user data, run for real with sh: it downloads the bundle from a
 * loopback server, checks its sha256, unpacks it, writes the boot spec 0600
 * and execs `meshd boot-ec2` (a stand-in meshd that records its arguments).
 * The spec's directory (/etc/meshd on an instance) is moved into a temp dir
 * by rewriting the script text, so this runs without root.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { bootSpec, burstNodeConfig, encodeUserData, userDataScript } from '../../providers/aws/index.ts'
import { BOOT_SPEC_PATH, bootSpecSchema } from '../../providers/aws/boot-spec.ts'
import type { LaunchRequest } from '../../providers/types.ts'
import { tempDir } from '../helpers/tmp.ts'

const run = promisify(execFile)

const req: LaunchRequest = {
  key: 'd3-1',
  cluster: 'prod',
  offering: { provider: 'aws-spot', kind: 'aws', region: 'us-east-1', zone: 'us-east-1a', instanceType: 'g5.xlarge', spot: true, pricePerHour: 0.4, available: true },
  replica: { models: ['llama3'], slots: 4, command: 'sim' },
  node: { name: 'burst-d3-1', config: { region: 'us-east-1', zone: 'us-east-1a', spot: true, cost_per_hour: 0.4, instance: { provider: 'aws-spot', key: 'd3-1' }, http: { api_keys: ['k'] } } },
  bootstrap: { peers: ['/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWB', '/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWA', '/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWB'] }
}

/** A bundle (one top directory, as `meshd bundle` makes) whose bin/meshd writes its arguments to $MESHD_ARGS. */
async function bundle (dir: string): Promise<{ file: string, sha: string }> {
  const src = join(dir, 'src', 'meshd-9.9.9-linux-x64')
  mkdirSync(join(src, 'bin'), { recursive: true })
  writeFileSync(join(src, 'bin', 'meshd'), '#!/bin/sh\nprintf "%s\\n" "$@" > "$MESHD_ARGS"\n')
  chmodSync(join(src, 'bin', 'meshd'), 0o755)
  writeFileSync(join(src, 'meshd-bundle.json'), '{"version":"9.9.9"}\n')
  const file = join(dir, 'meshd.tar.gz')
  await run('tar', ['-czf', file, '-C', join(dir, 'src'), 'meshd-9.9.9-linux-x64'])
  return { file, sha: createHash('sha256').update(readFileSync(file)).digest('hex') }
}

async function serve (t: { teardown: (fn: () => Promise<void>) => void }, file: string): Promise<{ url: string, hits: () => number }> {
  let hits = 0
  const server = createServer((_req, res) => {
    hits++
    res.writeHead(200, { 'content-type': 'application/gzip' })
    res.end(readFileSync(file))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/meshd.tar.gz`, hits: () => hits }
}

function script (installDir: string, etc: string, b: { url: string, sha256: string } | null): string {
  const spec = bootSpec({ provider: 'aws-spot', cluster: 'prod', installDir, config: burstNodeConfig({ provider: 'aws-spot', req, defaults: { burst: { ttl: '8h' } } }), swarmKey: { from: 'ssm', parameter: '/meshd/prod/swarm', region: 'us-east-1' } })
  const s = userDataScript({ spec, bundle: b })
  // Base64 round trip, as EC2 hands it to cloud-init.
  return Buffer.from(encodeUserData(s), 'base64').toString('utf8').split('/etc/meshd').join(etc)
}

async function sh (text: string, dir: string, args: string): Promise<{ code: number, stderr: string }> {
  const file = join(dir, `user-data-${Math.random().toString(16).slice(2)}.sh`)
  writeFileSync(file, text)
  try {
    const r = await run('sh', [file], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MESHD_ARGS: args }, timeout: 30_000 })
    return { code: 0, stderr: r.stderr }
  } catch (e) {
    return { code: (e as { code?: number }).code ?? -1, stderr: (e as { stderr?: string }).stderr ?? String(e) }
  }
}

t.test('the user data installs the bundle, writes the spec 0600 and execs boot-ec2; a second run does not download again', async (t) => {
  const dir = tempDir(t, 'meshd-userdata-')
  const b = await bundle(dir)
  const srv = await serve(t, b.file)
  const install = join(dir, 'opt', 'meshd')
  const etc = join(dir, 'etc')
  const args = join(dir, 'args')
  const text = script(install, etc, { url: srv.url, sha256: b.sha })
  const r = await sh(text, dir, args)
  t.equal(r.code, 0, `exit 0 (${r.stderr})`)
  t.same(readFileSync(args, 'utf8').split('\n').filter(Boolean), ['boot-ec2', '--spec', BOOT_SPEC_PATH.replace('/etc/meshd', etc)], 'exec meshd boot-ec2 --spec <path>')
  const specFile = join(etc, 'boot.json')
  t.equal(statSync(specFile).mode & 0o777, 0o600, 'spec mode 0600')
  const spec = bootSpecSchema.parse(JSON.parse(readFileSync(specFile, 'utf8')))
  t.same(spec.swarm_key, { from: 'ssm', parameter: '/meshd/prod/swarm', region: 'us-east-1' })
  t.same((spec.config.mesh as { bootstrap: string[] }).bootstrap, ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWA', '/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWB'], 'peers sorted, once each')
  t.same((spec.config.http as { api_keys: string[] }).api_keys, ['k'], 'the request\'s config layer is in')
  t.same(spec.config.burst, { ttl: '8h' }, 'the provider defaults layer is in')
  t.equal(readlinkSync(join(install, 'current')), `releases/${b.sha}`)
  t.match(JSON.parse(readFileSync(join(install, 'installed.json'), 'utf8')), { sha256: b.sha, version: '9.9.9' })
  t.notOk(existsSync(join(install, '.download-boot.tar.gz')), 'the download is removed')
  t.equal(srv.hits(), 1)

  const again = await sh(text, dir, args)
  t.equal(again.code, 0, `a rerun succeeds (${again.stderr})`)
  t.equal(srv.hits(), 1, 'and finds the bundle installed: no second download')
})

t.test('a bundle whose sha256 differs is refused and nothing is switched', async (t) => {
  const dir = tempDir(t, 'meshd-userdata-')
  const b = await bundle(dir)
  const srv = await serve(t, b.file)
  const install = join(dir, 'opt', 'meshd')
  const r = await sh(script(install, join(dir, 'etc'), { url: srv.url, sha256: '0'.repeat(64) }), dir, join(dir, 'args'))
  t.not(r.code, 0, 'the boot fails')
  t.match(r.stderr, /the downloaded bundle is damaged \(sha256 differs/)
  t.notOk(existsSync(join(install, 'current')), 'no current')
  t.notOk(existsSync(join(dir, 'args')), 'meshd never ran')
  t.notOk(existsSync(join(dir, 'etc', 'boot.json')), 'no spec written')
})

t.test('without bundle_url the image must carry meshd', async (t) => {
  const dir = tempDir(t, 'meshd-userdata-')
  const r = await sh(script(join(dir, 'opt'), join(dir, 'etc'), null), dir, join(dir, 'args'))
  t.not(r.code, 0)
  t.match(r.stderr, /no bundle_url configured and no meshd in .*\/current on this image/)
})

t.test('the same settings give the same script (one launch template), other peers another', async (t) => {
  const a = script('/opt/meshd', '/etc/meshd', { url: 'https://x.invalid/b.tgz', sha256: 'a'.repeat(64) })
  const b = script('/opt/meshd', '/etc/meshd', { url: 'https://x.invalid/b.tgz', sha256: 'a'.repeat(64) })
  t.equal(a, b)
  t.notOk(a.includes('d3-1'), 'nothing of the instance (its key) is in it')
  t.notOk(a.includes('burst-d3-1'), 'nor its node name')
})
