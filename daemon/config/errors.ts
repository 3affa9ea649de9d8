/**
 * A config that cannot be used. The CLI prints `message` and exits 2
 * (README, Command line: "bad usage or bad config").
 */
export class ConfigError extends Error {
  readonly file: string
  readonly key: string
  readonly expected: string
  readonly exitCode = 2

  /** `problem` says what is wrong when "expected ..." alone would not (an unknown key). */
  constructor (file: string, key: string, expected: string, issueCount = 1, problem?: string) {
    const more = issueCount > 1 ? ` (and ${issueCount - 1} more problem${issueCount > 2 ? 's' : ''})` : ''
    super(`${file}: ${key}: ${problem !== undefined ? problem + '; ' : ''}expected ${expected.replace(/^expected /, '')}${more}`)
    this.name = 'ConfigError'
    this.file = file
    this.key = key
    this.expected = expected
  }
}
