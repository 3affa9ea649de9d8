/** `kind: ssh`: burst replicas on a pool of bare hosts over SSH. See provider.ts and README.md. */
export { sshProvider, SshProvider, dirName, unitName, LAUNCH_STALE_MS, STOP_GRACE_EXTRA_MS, TOMBSTONE_KEEP_MS, type SshProviderInit, type SshHostInit, type HostCheck, type KeyRecord, type ValidateNodeConfig } from './provider.ts'
export { Connection, HostStepError, fetchHostKey, readIdentity, targetName, type Target, type Step } from './connection.ts'
export { parseKnownHosts, checkHostKey, blobKeyType, fingerprint, knownHostsLine, hostName, type HostKeyVerdict } from './known-hosts.ts'
export { parseProbe, probeScript, type HostFacts } from './probe.ts'
