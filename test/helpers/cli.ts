/** Runs the real `bin/meshd` as a process, as users and scripts do. */
import { spawn } from 'node:child_process'
import { MESHD } from './daemon.ts'

export interface CliResult { code: number | null, stdout: string, stderr: string, ms: number }

export function meshd (args: string[], opts: { cwd?: string, env?: Record<string, string | undefined>, bin?: string, timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(opts.bin ?? MESHD, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`meshd ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 30_000} ms; stderr: ${stderr}`)) }, opts.timeoutMs ?? 30_000)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: performance.now() - start }) })
  })
}
