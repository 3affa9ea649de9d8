/**
 * The AWS SDK must never leave this machine in tests: its default credential
 * chain and metadata client try 169.254.169.254. Dummy credentials and no
 * metadata look-up, for this process (`offlineAws()`) or a child's env
 * (`AWS_TEST_ENV`); every endpoint is then pointed at a loopback server.
 */
export const AWS_TEST_ENV = {
  AWS_ACCESS_KEY_ID: 'AKIDTEST',
  AWS_SECRET_ACCESS_KEY: 'test-secret',
  AWS_EC2_METADATA_DISABLED: 'true'
} as const

export function offlineAws (): void {
  Object.assign(process.env, AWS_TEST_ENV)
}
