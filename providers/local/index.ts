/** `kind: local`: burst replicas as meshd processes on this machine. See provider.ts and README.md. */
export {
  localProvider,
  LocalProvider,
  defaultWorkDir,
  dirName,
  STOP_GRACE_MS,
  STOP_GRACE_EXTRA_MS,
  PRUNE_AFTER_MS,
  FORGET_AFTER_MS,
  LAUNCH_STALE_MS,
  type LocalProviderInit,
  type ValidateNodeConfig
} from './provider.ts'
export { readManifest, type Manifest } from './manifest.ts'
export { nodeConfig, replicaSection, deepMerge } from '../node-config.ts'
