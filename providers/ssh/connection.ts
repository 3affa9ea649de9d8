/**
 * One SSH connection to one pool host with `ssh2`: the host key checked
 * against known_hosts before anything is sent, key authentication only, and
 * every operation under a deadline (a hung host never blocks the caller: on
 * a deadline the connection is destroyed and the step fails).
 *
 * Failures are HostStepError naming the host and the step (connect, host key,
 * auth, a command, upload), so a caller reports "h2: upload: ..." and moves
 * on. The identity file's contents and anything passed on stdin are never put
 * in a message.
 */
import { readFileSync } from 'node:fs'
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2'
import { checkHostKey, blobKeyType, fingerprint, type HostKeyVerdict, type KnownHostsEntry } from './known-hosts.ts'

export interface Target {
  /** As written in the pool config (also how known_hosts names it). */
  host: string
  port: number
  user: string
  /** The private key; null: the SSH agent at $SSH_AUTH_SOCK. */
  identityFile: string | null
}

export type Step = 'config' | 'connect' | 'host key' | 'auth' | 'probe' | 'upload' | 'install' | 'configure' | 'start' | 'stop' | 'state' | 'capacity'

/** A host failed at a step: what the provider reports and cools the host down for. */
export class HostStepError extends Error {
  readonly host: string
  readonly step: Step
  /** The message without the host and step. */
  readonly reason: string
  /** For host key refusals: what known_hosts said and the key offered. */
  readonly hostKey?: { verdict: HostKeyVerdict, fingerprint: string }
  constructor (host: string, step: Step, message: string, extra?: { hostKey?: { verdict: HostKeyVerdict, fingerprint: string }, cause?: unknown }) {
    super(`${host}: ${step}: ${message}`, extra?.cause === undefined ? undefined : { cause: extra.cause })
    this.name = 'HostStepError'
    this.host = host
    this.step = step
    this.reason = message
    if (extra?.hostKey !== undefined) this.hostKey = extra.hostKey
  }
}

export function targetName (t: Pick<Target, 'host' | 'port'>): string {
  return t.port === 22 ? t.host : `${t.host}:${t.port}`
}

/** The private key, or a clear error naming the file (a missing identity file is the classic "generic failure"). */
export function readIdentity (host: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code ?? String(e)
    throw new HostStepError(host, 'config', `identity_file ${file}: ${why}`)
  }
}

export interface ExecResult { code: number | null, stdout: string, stderr: string }

export interface ConnectOptions {
  /** known_hosts entries (parsed); the host key must be `known` in them. */
  knownHosts: KnownHostsEntry[]
  /** The known_hosts file, for messages. */
  knownHostsFile: string
  /** The pool's name, for the trust command in messages. */
  pool: string
  timeoutMs: number
  /** Accept any host key (only `meshd pool trust`, which shows it and records it). */
  acceptAnyHostKey?: boolean
}

export class Connection {
  readonly target: Target
  readonly hostKey: Buffer
  private readonly client: Client
  private sftpP: Promise<SFTPWrapper> | null = null

  private constructor (target: Target, client: Client, hostKey: Buffer) {
    this.target = target
    this.client = client
    this.hostKey = hostKey
  }

  static async open (target: Target, opts: ConnectOptions): Promise<Connection> {
    const name = targetName(target)
    const agent = process.env.SSH_AUTH_SOCK
    if (target.identityFile === null && (agent === undefined || agent === '')) throw new HostStepError(name, 'config', 'no identity_file configured and no SSH agent (SSH_AUTH_SOCK is not set)')
    const privateKey = target.identityFile === null ? undefined : readIdentity(name, target.identityFile)
    const client = new Client()
    let offered: Buffer | null = null
    let verdict: HostKeyVerdict | null = null
    const cfg: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      ...(privateKey === undefined ? { agent } : { privateKey }),
      readyTimeout: opts.timeoutMs,
      // Key authentication only: never an agent or a password prompt.
      tryKeyboard: false,
      hostVerifier: (key: Buffer) => {
        offered = key
        if (opts.acceptAnyHostKey === true) return true
        verdict = checkHostKey(opts.knownHosts, target.host, target.port, blobKeyType(key), key.toString('base64'))
        return verdict.kind === 'known'
      }
    }
    return await new Promise<Connection>((resolve, reject) => {
      let done = false
      const timer = setTimeout(() => { fail(new HostStepError(name, 'connect', `no answer within ${opts.timeoutMs} ms`)) }, opts.timeoutMs + 500)
      const fail = (e: Error): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        client.destroy()
        reject(e)
      }
      client.once('ready', () => {
        if (done) return
        done = true
        clearTimeout(timer)
        resolve(new Connection(target, client, offered!))
      })
      client.on('error', (e: Error & { level?: string }) => {
        if (offered !== null && verdict !== null && verdict.kind !== 'known') {
          fail(hostKeyError(name, target, opts, verdict, offered))
        } else if (e.level === 'client-authentication') {
          fail(new HostStepError(name, 'auth', `${target.user}@${name} refused ${target.identityFile === null ? 'every key of the SSH agent' : `the key in ${target.identityFile}`} (is its .pub in the host's authorized_keys?)`, { cause: e }))
        } else if (e.level === 'client-timeout') {
          fail(new HostStepError(name, 'connect', `no SSH handshake within ${opts.timeoutMs} ms`, { cause: e }))
        } else {
          fail(new HostStepError(name, 'connect', e.message, { cause: e }))
        }
      })
      client.once('close', () => { fail(new HostStepError(name, 'connect', 'connection closed during the handshake')) })
      try {
        client.connect(cfg)
      } catch (e) {
        // ssh2 throws synchronously on a key it cannot parse (never print the key).
        fail(new HostStepError(name, 'config', `identity_file ${target.identityFile}: ${(e as Error).message}`))
      }
    })
  }

  /** Runs a shell command; rejects on the deadline (the connection is then closed). stdin is never logged. */
  async exec (step: Step, command: string, opts: { timeoutMs: number, stdin?: string | Buffer }): Promise<ExecResult> {
    const name = targetName(this.target)
    return await new Promise<ExecResult>((resolve, reject) => {
      let done = false
      let stdout = ''
      let stderr = ''
      const timer = setTimeout(() => {
        if (done) return
        done = true
        this.close()
        const said = stderr.trim().split('\n').slice(-2).join(' / ')
        reject(new HostStepError(name, step, `no answer within ${opts.timeoutMs} ms${said === '' ? '' : ` (it said: ${said})`}`))
      }, opts.timeoutMs)
      this.client.exec(command, (err, ch) => {
        if (err !== undefined && err !== null) {
          if (done) return
          done = true
          clearTimeout(timer)
          reject(new HostStepError(name, step, err.message, { cause: err }))
          return
        }
        let code: number | null = null
        ch.on('data', (d: Buffer) => { stdout += d.toString('utf8') })
        ch.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8') })
        ch.on('exit', (c: number | null) => { code = c })
        ch.on('close', () => {
          if (done) return
          done = true
          clearTimeout(timer)
          resolve({ code, stdout, stderr })
        })
        if (opts.stdin !== undefined) ch.end(opts.stdin)
        else ch.end()
      })
    })
  }

  /** exec that must exit 0; otherwise a HostStepError with its stderr (trimmed). */
  async run (step: Step, command: string, opts: { timeoutMs: number, stdin?: string | Buffer }): Promise<string> {
    const r = await this.exec(step, command, opts)
    if (r.code !== 0) throw new HostStepError(targetName(this.target), step, `${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / ') || 'failed'} (exit ${r.code ?? 'none'})`)
    return r.stdout
  }

  /** Uploads a local file over SFTP to `remote` with `mode`; rejects on the deadline. */
  async upload (local: string, remote: string, mode: number, timeoutMs: number): Promise<void> {
    const name = targetName(this.target)
    this.sftpP ??= new Promise((resolve, reject) => { this.client.sftp((e, s) => { if (e !== undefined && e !== null) reject(e); else resolve(s) }) })
    await new Promise<void>((resolve, reject) => {
      let done = false
      const timer = setTimeout(() => {
        if (done) return
        done = true
        this.close()
        reject(new HostStepError(name, 'upload', `not done within ${timeoutMs} ms`))
      }, timeoutMs)
      const finish = (e?: unknown): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        if (e === undefined || e === null) resolve()
        else reject(new HostStepError(name, 'upload', (e as Error).message, { cause: e }))
      }
      this.sftpP!.then((sftp) => { sftp.fastPut(local, remote, { mode }, (e) => { finish(e) }) }, finish)
      this.client.once('close', () => { finish(new Error('connection closed')) })
    })
  }

  close (): void {
    this.client.end()
    this.client.destroy()
  }
}

function hostKeyError (name: string, target: Target, opts: ConnectOptions, verdict: HostKeyVerdict, offered: Buffer): HostStepError {
  const fp = fingerprint(offered)
  const hostKey = { verdict, fingerprint: fp }
  const trust = `meshd pool trust ${opts.pool} ${name}`
  if (verdict.kind === 'changed') {
    return new HostStepError(name, 'host key',
      `WARNING: HOST KEY CHANGED. ${name} offers ${blobKeyType(offered)} ${fp}, but ${opts.knownHostsFile} (line ${verdict.lines.join(', ')}) knows it as ${verdict.known.join(', ')}. ` +
      `Someone may be intercepting the connection, or the host was reinstalled. Refused. If you know why it changed, remove the old line from ${opts.knownHostsFile} and run: ${trust}`,
      { hostKey })
  }
  if (verdict.kind === 'revoked') {
    return new HostStepError(name, 'host key', `${name} offers a key marked @revoked in ${opts.knownHostsFile} (line ${verdict.line}): ${fp}. Refused.`, { hostKey })
  }
  return new HostStepError(name, 'host key', `unknown host key ${blobKeyType(offered)} ${fp} (not in ${opts.knownHostsFile}). Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then run: ${trust}`, { hostKey })
}

/**
 * The host key a host offers, without logging in (the handshake is stopped
 * right after the key exchange): for `meshd pool trust` and `pool check`.
 */
export async function fetchHostKey (target: Pick<Target, 'host' | 'port'>, timeoutMs: number): Promise<Buffer> {
  const name = targetName(target)
  const client = new Client()
  return await new Promise<Buffer>((resolve, reject) => {
    let key: Buffer | null = null
    let done = false
    const end = (e: Error | null): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      client.destroy()
      if (key !== null) resolve(key)
      else reject(e ?? new HostStepError(name, 'connect', 'no host key offered'))
    }
    const timer = setTimeout(() => { end(new HostStepError(name, 'connect', `no answer within ${timeoutMs} ms`)) }, timeoutMs)
    client.on('error', (e: Error) => { end(key === null ? new HostStepError(name, 'connect', e.message, { cause: e }) : null) })
    client.on('close', () => { end(null) })
    client.connect({ host: target.host, port: target.port, username: 'meshd-host-key', readyTimeout: timeoutMs, hostVerifier: (k: Buffer) => { key = k; return false } })
  })
}
