/** `kind: aws`: burst replicas on EC2 (spot with on-demand fallback). See provider.ts and README.md. */
export { awsProvider, AwsProvider, TEMPLATE_UNUSED_MS, type AwsProviderInit, type AwsLog, type ValidateNodeConfig } from './provider.ts'
export { Ec2Clients, deadline, type Ec2ClientsInit } from './clients.ts'
export { Ec2RetryStrategy, retryDelay, DEFAULT_RETRY, type RetryPolicy } from './retry.ts'
export { Ec2ApiError, errorFacts, typedError, CAPACITY_CODES, QUOTA_CODES } from './errors.ts'
export { ON_DEMAND_PRICES, PRICES_TAKEN_AT, PRICES_SOURCE, onDemandPrice } from './on-demand-prices.ts'
export { bootSpec, burstNodeConfig, swarmKeySource, userDataScript, encodeUserData, BURST_PATHS } from './user-data.ts'
export { checkPermissions, type PermissionRow } from './check.ts'
