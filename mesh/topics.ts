/**
 * Gossip topic and stream protocol names. Every name carries the cluster, so
 * two clusters that happen to share a swarm key never exchange a message,
 * and a version, so a schema change ships as a new topic that old and new
 * nodes can both subscribe to during a rolling upgrade.
 */
export const HEARTBEAT_TOPIC_VERSION = 1

export function heartbeatTopic (cluster: string): string {
  return `/meshd/${cluster}/heartbeat/${HEARTBEAT_TOPIC_VERSION}`
}

/** Address-book exchange on connect; its presence also proves the peer is of this cluster. */
export function syncProtocol (cluster: string): string {
  return `/meshd/${cluster}/sync/1.0.0`
}
