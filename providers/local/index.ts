/** `kind: local`: burst replicas as meshd processes on this machine. */
export { localProvider, LocalProvider, defaultWorkDir, STOP_GRACE_MS, PRUNE_AFTER_MS, type LocalProviderInit } from './provider.ts'
