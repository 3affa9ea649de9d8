/**
 * The provider request for a launch action, pure: what the launched node
 * serves and how its meshd is configured. The provider adds what only it
 * knows (the instance id and launch time under `instance`, addresses).
 */
import type { LaunchRequest, Offering } from '../../../providers/types.ts'
import type { LaunchAction, Policy } from './types.ts'

/** A node name from the key: `burst-d7-3-0`, safe as a hostname label. */
export function nodeName (key: string): string {
  return `burst-${key}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63).replace(/-+$/, '')
}

/**
 * The request for `offering` (the action's own, or one of its fallbacks).
 * Throws when the action names a provider the policy does not have: the
 * policy changed between the decision and the launch, and the launch must
 * not go ahead on guesses.
 */
export function launchRequest (action: LaunchAction, offering: Offering, policy: Policy, peers: readonly string[]): LaunchRequest {
  const p = policy.providers.find((x) => x.name === offering.provider)
  if (p === undefined) throw new Error(`launch ${action.key}: provider ${offering.provider} is not in the config`)
  const config: Record<string, unknown> = {
    ...p.config,
    voter: false,
    provider: p.name,
    region: offering.region,
    spot: offering.spot,
    cost_per_hour: offering.pricePerHour,
    instance: { provider: p.name, key: action.key }
  }
  if (offering.zone !== undefined) config.zone = offering.zone
  return {
    key: action.key,
    cluster: policy.cluster,
    offering,
    replica: p.replica,
    node: { name: nodeName(action.key), config },
    bootstrap: { peers: [...peers] }
  }
}
