/**
 * A fake EC2 endpoint for tests: the real @aws-sdk/client-ec2 talks to it
 * over HTTP (EC2 query protocol: POST form bodies, XML answers in EC2's
 * namespace, EC2's error document and statuses), and each instance it
 * launches really runs its user data in namespaces of its own (machines.ts).
 *
 * Models:
 * - exactly the actions meshd uses: DescribeAvailabilityZones (filters state,
 *   zone-name), DescribeSpotPriceHistory (types, Linux/UNIX, StartTime: the
 *   price in force then and every change since, newest first; paginated),
 *   DescribeLaunchTemplates / CreateLaunchTemplate / DeleteLaunchTemplate
 *   (by name or id; NotFound / AlreadyExists errors; user data must be valid
 *   base64; InstanceMetadataTags decides whether IMDS shows tags),
 *   CreateFleet of Type instant (overrides tried cheapest first: spot by spot
 *   price for price-capacity-optimized, on-demand by on-demand price for
 *   lowest-price; capacity refusals reported in Errors with HTTP 200 and no
 *   instance, as EC2 does; tags from TagSpecification `instance`),
 *   DescribeInstances (InstanceIds, or filters tag:<k>, tag-key,
 *   instance-state-name, instance-id, availability-zone, instance-type,
 *   instance-lifecycle; MaxResults + NextToken; one reservation per launch),
 *   TerminateInstances;
 * - the region from each request's SigV4 credential scope (one endpoint
 *   serves every region, as the provider's `endpoint` setting does);
 * - ClientToken idempotency on CreateFleet and CreateLaunchTemplate (the
 *   same answer again; other parameters → IdempotentParameterMismatch),
 *   switchable off to test the look-up by tag;
 * - DryRun (DryRunOperation 412, or UnauthorizedOperation 403 for an action
 *   denied with `deny`), throttling (RequestLimitExceeded 503: the next N
 *   calls, or a token bucket per second), errors with EC2's codes and
 *   statuses (InsufficientInstanceCapacity & co. inside CreateFleet's Errors;
 *   InvalidInstanceID.NotFound, InvalidLaunchTemplateName.NotFoundException,
 *   InvalidParameterValue … 400);
 * - instance states pending → running (when its machine is up) →
 *   shutting-down (TerminateInstances: SIGTERM, SIGKILL after the grace) →
 *   terminated, listed as terminated for an hour;
 * - spot interruptions (the notice on the instance's IMDS, the termination at
 *   the notice's time) and rebalance recommendations;
 * - SSM GetParameter and Secrets Manager GetSecretValue (secrets.ts), and
 *   plain files over GET /files/<name> (a bundle_url).
 *
 * Does not model: RunInstances, spot requests and fleets of type request /
 * maintain, MaxPrice and Priority, stop/start/hibernate, subnets and VPCs
 * (a SubnetId is kept, not checked), security groups (no filtering: every
 * instance reaches every other), EBS volumes (volume tags are accepted and
 * dropped), instance limits (only when refused by a rule), IAM (every call is
 * allowed unless denied), request signing checks, eventual consistency (a
 * launched instance is listed at once), the instance's reboot or a second
 * run of user data.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Teardown } from '../tmp.ts'
import { Ec2, type CapacityRule, type Ec2Options, type InstanceRecord } from './ec2.ts'
import { BareMachines, NetnsMachines, netnsMachinesAvailable } from './machines.ts'
import { Ec2Error, errorXml, parseForm, responseXml, signedRegion, str } from './query.ts'
import { Secrets } from './secrets.ts'

export { netnsMachinesAvailable, type CapacityRule, type InstanceRecord }

export interface FakeEc2Options extends Ec2Options {
  /**
   * `netns`: each instance gets network and mount namespaces and runs its
   * user data (root only); `bare`: instances are records with an IMDS on
   * loopback, nothing runs. @default 'bare'
   */
  machines?: 'netns' | 'bare'
  /** SIGTERM → SIGKILL grace on TerminateInstances (EC2 gives a shutdown some time). @default 20 s */
  terminateGraceMs?: number
}

export interface FakeEc2 {
  /** The `endpoint` for EC2Client (and for SSM / Secrets Manager: AWS_ENDPOINT_URL_SSM …). */
  readonly url: string
  /** Where instances reach the host (netns: the bridge address; bare: 127.0.0.1). */
  readonly hostIp: string
  readonly ec2: Ec2
  /** Calls answered per action (refused and throttled ones too). */
  calls: (action: string) => number
  /** Serves a file at `<url>/files/<name>`; returns that URL. */
  serveFile: (name: string, path: string) => string
  putParameter: (name: string, value: string) => void
  putSecret: (id: string, value: string) => void
  setSpotPrice: (type: string, zone: string, price: number) => void
  setOnDemandPrice: (type: string, price: number) => void
  refuse: (rule: CapacityRule) => void
  restore: (rule?: CapacityRule) => void
  throttleNext: (count: number) => void
  throttleRate: (limit: { perSecond: number, burst: number, actions?: string[] } | null) => void
  /**
   * From now on, this action is carried out but its answer is held back (a
   * caller that dies meanwhile never learns the outcome: the case of a leader
   * killed between CreateFleet and its ledger entry). `release()` sends what
   * was held and stops holding; `held()` counts answers waiting.
   */
  holdAnswers: (action: string) => { held: () => number, release: () => void }
  /** UnauthorizedOperation for this action (DryRun or not). */
  deny: (action: string) => void
  /** The spot interruption notice on its IMDS now (unless `notice` is false); the instance is terminated at `at` (epoch ms). */
  interrupt: (id: string, at: number, opts?: { notice?: boolean }) => void
  rebalance: (id: string, at?: number) => void
  instance: (id: string) => InstanceRecord
  instances: () => InstanceRecord[]
  /** The instance's IMDS base URL (AWS_EC2_METADATA_SERVICE_ENDPOINT), once it is up. */
  imdsUrl: (id: string) => string | undefined
  /** Netns machines only: the command prefix that runs a program in the instance. */
  inside: (id: string) => string[]
  /** Netns machines only: pids in the instance's network namespace. */
  pids: (id: string) => number[]
  /** Netns machines only: the user data's exit status, once it ended. */
  userDataExit: (id: string) => Promise<number | null>
  consoleOutput: (id: string) => string
  close: () => Promise<void>
}

export async function startFakeEc2 (t: Teardown, opts: FakeEc2Options = {}): Promise<FakeEc2> {
  const root = mkdtempSync(join(tmpdir(), 'ec2f-'))
  const files = new Map<string, string>()
  const holding = new Map<string, Array<() => void>>()
  const secrets = new Secrets()
  let closed = false
  let machines: BareMachines | NetnsMachines
  let server: ReturnType<typeof createServer> | undefined
  let ec2: Ec2 | undefined
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    ec2?.close()
    if (server !== undefined) {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server!.close(() => { resolve() }))
    }
    await machines?.close()
    rmSync(root, { recursive: true, force: true })
  }
  t.teardown(close)

  if (opts.machines === 'netns') {
    const why = netnsMachinesAvailable()
    if (why !== false) throw new Error(`fake EC2 with netns machines ${why}`)
  }
  // The endpoints' address is known before the instances' environment is: a late-bound env.
  const env: Record<string, string> = {}
  machines = opts.machines === 'netns' ? new NetnsMachines(root, { env }, opts.terminateGraceMs ?? 20_000) : new BareMachines()
  ec2 = new Ec2(machines, opts)
  const hostIp = machines instanceof NetnsMachines ? machines.hostIp : '127.0.0.1'

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!
    if (req.method === 'GET' && path.startsWith('/files/')) {
      const file = files.get(decodeURIComponent(path.slice('/files/'.length)))
      if (file === undefined) { res.writeHead(404).end('no such file\n'); return }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': statSync(file).size })
      createReadStream(file).pipe(res)
      return
    }
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    const target = req.headers['x-amz-target']
    if (typeof target === 'string') {
      let parsed: unknown = {}
      try { parsed = JSON.parse(body === '' ? '{}' : body) } catch {}
      const [status, out] = secrets.handle(target, parsed)
      const text = JSON.stringify(out)
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': crypto.randomUUID() })
      res.end(text)
      return
    }
    const p = parseForm(body)
    const action = str(p, 'Action') ?? ''
    const send = (status: number, xml: string): void => {
      const answer = (): void => {
        if (res.destroyed) return
        res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'content-length': Buffer.byteLength(xml) })
        res.end(xml)
      }
      const queue = holding.get(action)
      if (queue === undefined) answer()
      else queue.push(answer)
    }
    try {
      const region = signedRegion(req.headers.authorization) ?? 'us-east-1'
      send(200, responseXml(action, ec2!.handle(action, region, p)))
    } catch (err) {
      if (err instanceof Ec2Error) send(err.status, errorXml(err.code, err.message))
      else send(500, errorXml('InternalError', `fake EC2: ${(err as Error).message}`))
    }
  }
  server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => { if (!res.headersSent) res.writeHead(500); res.end(String(err)) })
  })
  await new Promise<void>((resolve, reject) => {
    server!.once('error', reject)
    server!.listen(0, hostIp, () => { server!.off('error', reject); resolve() })
  })
  const url = `http://${hostIp}:${(server.address() as AddressInfo).port}`
  env.AWS_ENDPOINT_URL_SSM = url
  env.AWS_ENDPOINT_URL_SECRETS_MANAGER = url

  const netns = (what: string): NetnsMachines => {
    if (!(machines instanceof NetnsMachines)) throw new Error(`fake EC2: ${what} needs machines: 'netns'`)
    return machines
  }
  const e = ec2
  return {
    url,
    hostIp,
    ec2: e,
    calls: (action) => e.calls.get(action) ?? 0,
    serveFile: (name, path) => { files.set(name, path); return `${url}/files/${encodeURIComponent(name)}` },
    putParameter: (name, value) => { secrets.parameters.set(name, value) },
    putSecret: (id, value) => { secrets.secrets.set(id, value) },
    setSpotPrice: (type, zone, price) => { e.setSpotPrice(type, zone, price) },
    setOnDemandPrice: (type, price) => { e.setOnDemandPrice(type, price) },
    refuse: (rule) => { e.refuse(rule) },
    restore: (rule) => { e.restore(rule) },
    throttleNext: (count) => { e.throttleNext(count) },
    throttleRate: (limit) => { e.throttleRate(limit) },
    holdAnswers: (action) => {
      if (!holding.has(action)) holding.set(action, [])
      return {
        held: () => holding.get(action)?.length ?? 0,
        release: () => {
          const q = holding.get(action) ?? []
          holding.delete(action)
          for (const a of q) a()
        }
      }
    },
    deny: (action) => { e.denied.add(action) },
    interrupt: (id, at, opts) => { e.interrupt(id, at, opts?.notice ?? true) },
    rebalance: (id, at) => { e.rebalance(id, at) },
    instance: (id) => e.get(id),
    instances: () => [...e.instances.values()],
    imdsUrl: (id) => machines.imdsOf(id)?.url,
    inside: (id) => netns('inside').inside(id),
    pids: (id) => netns('pids').pids(id),
    userDataExit: async (id) => {
      const p = netns('userDataExit').userDataExit(id)
      if (p === undefined) throw new Error(`fake EC2: instance ${id} has not run its user data`)
      return p
    },
    consoleOutput: (id) => machines instanceof NetnsMachines ? machines.consoleOutput(id) : '',
    close
  }
}
