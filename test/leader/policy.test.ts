import t from 'tap'
import { configSchema } from '../../daemon/config/schema.ts'
import { policyFromConfig, LEADER_TIMINGS } from '../../daemon/leader/plan/policy.ts'
import { launchRequest, nodeName } from '../../daemon/leader/plan/launch-request.ts'
import { observeMember } from '../../daemon/leader/plan/observe.ts'
import { MemberTable } from '../../mesh/membership/table.ts'
import { failureTiming } from '../../mesh/membership/constants.ts'
import type { LaunchAction } from '../../daemon/leader/plan/types.ts'
import { offering } from './fixtures.ts'

const config = configSchema.parse({
  cluster: 'prod',
  burst: { mode: 'auto', queue_depth_threshold: 50, max_cloud_instances: 7, cost_budget: 2.5, scale_down_delay: '2m', check_interval: '15s', ttl: '4h', idle_timeout: 0 },
  service: { min_replicas: 2, max_replicas: 9, target_qps_per_replica: 3, upscale_delay_seconds: 60, downscale_delay_seconds: 600, base_ondemand_fallback_replicas: 1, dynamic_ondemand_fallback: true },
  providers: [
    { name: 'workstation', kind: 'local', max_instances: 4, cost_per_hour: 0.3, replica: { command: 'sim', models: ['llama3'], slots: 4 } },
    { name: 'aws-spot', kind: 'aws', regions: ['us-east-1'], instance_types: ['c7a.4xlarge'], image_id: 'ami-1', spot: true, max_instances: 20, replica: { command: 'llama-server', models: ['llama3'], slots: 8 }, config: { http: { listen: '0.0.0.0:8080' } } }
  ]
})

t.test('the validated config maps onto the policy, durations in milliseconds', async (t) => {
  const p = policyFromConfig(config)
  t.match(p.burst, {
    mode: 'auto', queueDepthThreshold: 50, maxCloudInstances: 7, minCloudInstances: 0, costBudget: 2.5,
    scaleDownDelayMs: 120_000, checkIntervalMs: 15_000, ttlMs: 4 * 3_600_000, idleTimeoutMs: 0, ...LEADER_TIMINGS
  })
  t.same(p.service, { minReplicas: 2, maxReplicas: 9, targetQpsPerReplica: 3, upscaleDelayMs: 60_000, downscaleDelayMs: 600_000, baseOndemandFallbackReplicas: 1, dynamicOndemandFallback: true })
  t.match(p.providers, [
    { name: 'workstation', kind: 'local', maxInstances: 4, costPerHour: 0.3, spot: false },
    { name: 'aws-spot', kind: 'aws', maxInstances: 20, spot: true, replica: { slots: 8 } }
  ])
  t.equal(policyFromConfig(config, { launchTimeoutMs: 1 }).burst.launchTimeoutMs, 1, 'leader timings can be overridden')
})

t.test('the launch request: tagged, the node configured as burst capacity', async (t) => {
  const p = policyFromConfig(config)
  const o = offering('aws-spot', 'aws', 0.21, { zone: 'us-east-1a', spot: true })
  const a: LaunchAction = { op: 'launch', key: 'd7-3-0', offering: o, fallbacks: [], reason: 'x' }
  const r = launchRequest(a, o, p, ['/ip4/10.0.0.1/tcp/4001'])
  t.match(r, { key: 'd7-3-0', cluster: 'prod', offering: o, replica: { command: 'llama-server', slots: 8 }, bootstrap: { peers: ['/ip4/10.0.0.1/tcp/4001'] } })
  t.same(r.node, {
    name: 'burst-d7-3-0',
    config: { http: { listen: '0.0.0.0:8080' }, voter: false, provider: 'aws-spot', region: 'us-east-1', spot: true, cost_per_hour: 0.21, instance: { provider: 'aws-spot', key: 'd7-3-0' }, zone: 'us-east-1a' }
  })
  t.throws(() => launchRequest(a, offering('gone', 'aws', 1), p, []), /provider gone is not in the config/)
  t.equal(nodeName('D7/3:0__x'), 'burst-d7-3-0--x', 'a hostname label')
})

t.test('a member table entry as decide() sees it', async (t) => {
  const table = new MemberTable('self', failureTiming(1000))
  table.observeHeartbeat({
    v: 1, cluster: 'c', id: 'p1', name: 'burst-d1-0-0', incarnation: 1, seq: 0, sent_at: 0, version: '0', state: 'draining', voter: false,
    provider: 'aws-spot', region: 'us-east-1', zone: 'us-east-1a', spot: true, cost_per_hour: 0.2, addrs: [], http: null, load: { cpu: 0, mem: 0 },
    replica: { ready: true, draining: false, models: ['m'], slots: 4, inflight: 2, queued: 1, qps: 0.5 },
    instance: { provider: 'aws-spot', id: 'i-1', key: 'd1-0-0', launched_at: 5 }
  }, 1234)
  t.same(observeMember(table.get('p1')!), {
    id: 'p1', name: 'burst-d1-0-0', state: 'alive', draining: true, lastSeenAt: 1234, provider: 'aws-spot', region: 'us-east-1', zone: 'us-east-1a', spot: true, costPerHour: 0.2, voter: false,
    instance: { provider: 'aws-spot', id: 'i-1', key: 'd1-0-0', launchedAt: 5 },
    replica: { ready: true, models: ['m'], slots: 4, inflight: 2, queued: 1, qps: 0.5 }
  })
})
