/**
 * What an EC2 burst node boots from: the contract between the launching
 * leader (which writes it into the launch template's user data) and
 * `meshd boot-ec2` on the instance (which reads it). Version 1.
 *
 * The user data is shared by every launch with the same settings (it lives
 * in a launch template, and CreateFleet cannot change user data per call), so
 * nothing per instance is in it. What makes a node *this* instance comes from
 * its instance metadata at boot (IMDSv2): the instance id, zone, region,
 * type, market (instance-life-cycle), private address, and the tags CreateFleet
 * put on it (launch templates enable InstanceMetadataTags for this), above
 * all `meshd:key`, the leader's idempotency key.
 *
 * The user data itself is a short POSIX shell script (providers/aws/user-data.ts):
 * download the bundle, check its sha256, unpack it into install_dir
 * atomically, write this spec to BOOT_SPEC_PATH (mode 0600), and exec
 * `<install_dir>/current/bin/meshd boot-ec2 --spec BOOT_SPEC_PATH`.
 */
import { z } from 'zod'

export const BOOT_SPEC_VERSION = 1

/** Where the user data writes the spec on the instance. */
export const BOOT_SPEC_PATH = '/etc/meshd/boot.json'

/** The tags every instance (and its volumes) carries; `list()` filters on the cluster's. */
export const TAGS = {
  cluster: 'meshd:cluster',
  /** The leader's idempotency key (also the CreateFleet ClientToken). */
  key: 'meshd:key',
  /** The leader's decision id the launch came from. */
  decision: 'meshd:decision',
  /** The provider's config name. */
  provider: 'meshd:provider',
  /** $/h the leader charges for it, as a decimal string (the node reports it as cost_per_hour). */
  price: 'meshd:price'
} as const

export const swarmKeySourceSchema = z.discriminatedUnion('from', [
  /** The key itself (the swarm key file's text): readable by whoever may read the user data. */
  z.strictObject({ from: z.literal('user_data'), key: z.string().min(1) }),
  /** An SSM Parameter Store SecureString, read with the instance's role. */
  z.strictObject({ from: z.literal('ssm'), parameter: z.string().min(1), region: z.string().min(1) }),
  /** A Secrets Manager secret (SecretString), read with the instance's role. */
  z.strictObject({ from: z.literal('secrets_manager'), secret_id: z.string().min(1), region: z.string().min(1) })
])

export const bootSpecSchema = z.strictObject({
  v: z.literal(BOOT_SPEC_VERSION),
  /** The provider's config name: `instance.provider` of the node. */
  provider: z.string().min(1),
  cluster: z.string().min(1),
  /**
   * The node's meshd config (providers/node-config.ts layers: replica,
   * bootstrap peers, burst ttl / idle timeout, the provider's `config`), less
   * what boot fills in from instance metadata: node_name, instance (provider,
   * id, key, launched_at, notices: ec2), region, zone, spot, cost_per_hour,
   * mesh.announce (the private address).
   */
  config: z.record(z.string(), z.unknown()),
  swarm_key: swarmKeySourceSchema,
  /** Where boot writes the node's files (0600) and keeps its state. */
  paths: z.strictObject({
    config: z.string().min(1),
    swarm_key: z.string().min(1),
    state_dir: z.string().min(1)
  }),
  install_dir: z.string().min(1)
})

export type BootSpec = z.output<typeof bootSpecSchema>
export type SwarmKeySource = z.output<typeof swarmKeySourceSchema>
