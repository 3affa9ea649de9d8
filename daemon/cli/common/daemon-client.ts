/**
 * What the CLI commands that talk to a running daemon share: find the admin
 * socket from the config, call, map failures to exit statuses.
 */
import { loadConfig, resolveConfigPath } from '../../config/load.ts'
import { callDaemon, AdminError, type CallOptions } from '../../admin/client.ts'
import type { AdminMethod } from '../../admin/protocol.ts'
import { CommandFailed, UsageError } from './command.ts'
import type { Config } from '../../config/schema.ts'

export function configFor (flag: string | undefined): Config {
  return loadConfig(resolveConfigPath(flag))
}

export async function call (config: Config, method: AdminMethod, params: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<unknown> {
  try {
    return await callDaemon(config.admin.socket, method, params, opts)
  } catch (err) {
    if (err instanceof AdminError && err.code === 'usage') throw new UsageError(err.message)
    throw new CommandFailed((err as Error).message, err instanceof AdminError ? err.code : undefined)
  }
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}
