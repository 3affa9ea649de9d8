/**
 * EC2's error codes, sorted into what the leader does about them (pure).
 *
 * EC2 says "no capacity" in two ways: an instant CreateFleet answers HTTP
 * 200 with an `Errors` list (one per override it tried), and RunInstances /
 * some endpoints answer an HTTP error (InsufficientInstanceCapacity is a
 * 500). Both end up here by code.
 */
import { InsufficientCapacityError, ProviderUnavailableError, QuotaError, type Offering } from '../types.ts'

/**
 * This (type, zone, market) cannot be had now: mark it unavailable and try
 * the next offering (Karpenter's list, plus the fleet-only spellings).
 */
export const CAPACITY_CODES: ReadonlySet<string> = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'SpotMaxPriceTooLow',
  'MaxSpotInstanceCountExceeded',
  'Unsupported',
  'UnfulfillableCapacity',
  'InsufficientFreeAddressesInSubnet'
])

/** An account limit: other offerings of the provider most likely fail too. */
export const QUOTA_CODES: ReadonlySet<string> = new Set([
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
  'MaxSpotFleetRequestCountExceeded',
  'MaxFleetCountExceeded',
  'ResourceLimitExceeded'
])

/** EC2 asks us to slow down; retried with backoff, then "unavailable, try later". */
export const THROTTLE_CODES: ReadonlySet<string> = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'TooManyRequestsException'])

/** EC2 itself failed; safe to retry (the ClientToken keeps a retried create single). */
export const SERVER_CODES: ReadonlySet<string> = new Set(['InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable'])

/** Node's network error codes: the endpoint could not be reached. */
const NETWORK_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED'])

/** What an SDK error (or anything thrown by send()) says, in plain fields. */
export interface ErrorFacts {
  /** EC2's code (`InsufficientInstanceCapacity`), the SDK's error name, or a Node error code. */
  code: string
  message: string
  /** HTTP status when EC2 answered. */
  status: number | null
}

export function errorFacts (e: unknown): ErrorFacts {
  const err = (typeof e === 'object' && e !== null ? e : {}) as { name?: unknown, Code?: unknown, code?: unknown, message?: unknown, $metadata?: { httpStatusCode?: unknown }, cause?: unknown }
  const status = typeof err.$metadata?.httpStatusCode === 'number' ? err.$metadata.httpStatusCode : null
  const message = typeof err.message === 'string' ? err.message : String(e)
  // The SDK puts EC2's code in `name` (and `Code`); Node network errors carry `code`.
  if (typeof err.Code === 'string' && err.Code !== '') return { code: err.Code, message, status }
  if (typeof err.code === 'string' && NETWORK_CODES.has(err.code)) return { code: err.code, message, status }
  const cause = err.cause as { code?: unknown } | undefined
  if (status === null && typeof cause?.code === 'string' && NETWORK_CODES.has(cause.code)) return { code: cause.code, message, status }
  return { code: typeof err.name === 'string' ? err.name : 'Error', message, status }
}

export function isCapacityCode (code: string): boolean { return CAPACITY_CODES.has(code) }
export function isQuotaCode (code: string): boolean { return QUOTA_CODES.has(code) }
export function isThrottleCode (code: string): boolean { return THROTTLE_CODES.has(code) }

/**
 * The endpoint could not be reached or did not answer in time, EC2 failed
 * (5xx that is not a capacity refusal), or it throttled past our retries:
 * nothing is known, the leader tries again later.
 */
export function isUnavailable (f: ErrorFacts): boolean {
  if (isCapacityCode(f.code)) return false
  if (isThrottleCode(f.code) || SERVER_CODES.has(f.code) || NETWORK_CODES.has(f.code)) return true
  if (f.code === 'TimeoutError' || f.code === 'AbortError' || f.code === 'RequestTimeout') return true
  return f.status !== null && f.status >= 500
}

/**
 * An EC2 answer that is none of the typed cases (bad parameters, missing
 * permission, unknown AMI ...): the launch fails and the ledger records EC2's
 * code and message. Not a ProviderError: retrying it would fail the same way.
 */
export class Ec2ApiError extends Error {
  readonly ec2Code: string
  readonly status: number | null
  constructor (provider: string, action: string, f: ErrorFacts, options?: ErrorOptions) {
    super(`${provider}: ${action}: ${f.code}: ${f.message}`, options)
    this.name = 'Ec2ApiError'
    this.ec2Code = f.code
    this.status = f.status
  }
}

/**
 * A thrown SDK error as the provider's typed error. `offering`: the one a
 * create asked for (named by a capacity refusal).
 */
export function typedError (provider: string, action: string, e: unknown, offering?: Offering): Error {
  const f = errorFacts(e)
  const msg = `${provider}: ${action}: ${f.code}: ${f.message}`
  if (isCapacityCode(f.code)) return new InsufficientCapacityError(provider, msg, offering, { cause: e })
  if (isQuotaCode(f.code)) return new QuotaError(provider, msg, { cause: e })
  if (isUnavailable(f)) return new ProviderUnavailableError(provider, msg, { cause: e })
  return new Ec2ApiError(provider, action, f, { cause: e })
}
