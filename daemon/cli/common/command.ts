/**
 * What every CLI command module exports, and the two kinds of failure the
 * CLI distinguishes by exit status.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'

export interface CommandModule {
  help: string
  run: (argv: string[]) => Promise<number>
}

/** Bad usage: exit 2. */
export class UsageError extends Error {
  readonly exitCode = 2
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** The operation failed: exit 1. `code` is the admin error code, when the daemon gave one. */
export class CommandFailed extends Error {
  readonly exitCode = 1
  readonly code: string | undefined
  constructor (message: string, code?: string) {
    super(message)
    this.name = 'CommandFailed'
    this.code = code
  }
}

/** The options every command takes. */
export const COMMON_OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean', default: false }
} as const

/** node:util parseArgs, with its errors turned into usage errors that name the command. */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>> (command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals, strict: true })
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/, '')} (see \`meshd ${command} --help\`)`)
  }
}
