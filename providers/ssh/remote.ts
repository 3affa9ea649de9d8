/**
 * The shell scripts the ssh provider runs on a pool host, as pure string
 * builders (POSIX sh, coreutils, tar). Secrets (the swarm key, the config)
 * go over stdin, never on a command line (visible in `ps` on the host).
 *
 * On the host:
 *
 *   <install_dir>/
 *     releases/<digest>/        one unpacked bundle each (bin/meshd, meshd-bundle.json …),
 *                               named by its manifest's contents_sha256; current and the one before kept
 *     current -> releases/<digest> switched atomically (symlink + rename)
 *     installed.json            {"sha256","contents_sha256","version","installed_at"}: what `current` is
 *     burst/<dir>/              one launch (dir: the key, made safe)
 *       key.json                the launch's record: its idempotency key (the claim: mkdir of the dir)
 *       meshd.json, swarm.key   mode 0600
 *       meshd.pid | unit        how its process is found (setsid nohup | systemd-run)
 *       meshd.log, state/, admin.sock
 */
import { BUNDLE_MANIFEST_FILE } from '../bundle-manifest.ts'

import { shq } from '../install-script.ts'

// Shared with the EC2 user data (providers/install-script.ts); re-exported for the ssh provider's callers.
export { shq, unpackScript } from '../install-script.ts'

export function burstDir (installDir: string, dir: string): string {
  return `${installDir.replace(/\/+$/, '')}/burst/${dir}`
}

/**
 * Prints the manifest of the installed bundle (`current/meshd-bundle.json`)
 * when `current` is runnable, else nothing: the caller compares its digest
 * with the bundle it holds (bundle-manifest.ts `needsUpload`).
 */
export function installedScript (installDir: string): string {
  const I = shq(installDir)
  return `mkdir -p ${I}
if [ -x ${I}/current/bin/meshd ] && [ -r ${I}/current/${BUNDLE_MANIFEST_FILE} ]; then cat ${I}/current/${BUNDLE_MANIFEST_FILE}; fi
# Uploads cut with their connection (nobody left to remove them), once surely dead.
find ${I} -maxdepth 1 -name '.upload-*' -mmin +30 -exec rm -f {} + 2>/dev/null; find ${I}/releases -maxdepth 1 -name '.new-*' -mmin +30 -exec rm -rf {} + 2>/dev/null; true
`
}

/** Claims a key on this host: mkdir is atomic. Prints `claimed` or `taken`. */
export function claimScript (installDir: string, dir: string): string {
  const d = shq(burstDir(installDir, dir))
  return `mkdir -p ${shq(installDir.replace(/\/+$/, '') + '/burst')} && if mkdir -m 700 ${d} 2>/dev/null; then echo claimed; else echo taken; fi\n`
}

/** Writes stdin to `file` with mode 0600 (whole-file replace). */
export function writeFileScript (file: string): string {
  const f = shq(file)
  const tmp = shq(`${file}.tmp`)
  return `umask 077 && cat > ${tmp} && chmod 600 ${tmp} && mv -f ${tmp} ${f}\n`
}

/** The process of a launch: alive or not (pid file + its command line naming the config, or the systemd unit). */
function aliveTest (d: string): string {
  return `alive=no
if [ -f ${d}/unit ]; then systemctl is-active --quiet "$(cat ${d}/unit)" && alive=yes
elif [ -f ${d}/meshd.pid ]; then p=$(cat ${d}/meshd.pid); if [ -n "$p" ] && kill -0 "$p" 2>/dev/null && tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -qF ${d}/meshd.json; then alive=yes; fi
fi`
}

/**
 * Every launch record of the host: `@@ <dir>`, then `key=<key.json>`,
 * `alive=yes|no`, `sock=yes` when its admin socket exists, `started=<log
 * line>` once it logged its mesh address.
 */
export function stateScript (installDir: string): string {
  const B = shq(installDir.replace(/\/+$/, '') + '/burst')
  return `[ -d ${B} ] || exit 0
for d in ${B}/*; do
  [ -f "$d/key.json" ] || continue
  echo "@@ $(basename "$d")"
  echo "key=$(tr -d '\\n' < "$d/key.json")"
  ${aliveTest('"$d"').split('\n').join('\n  ')}
  echo "alive=$alive"
  if [ -f "$d/meshd.pid" ] || [ -f "$d/unit" ]; then echo proc=yes; fi
  s=$(sed -n 's/.*"socket": *"\\([^"]*\\)".*/\\1/p' "$d/meshd.json" 2>/dev/null | head -n 1)
  if [ -n "$s" ] && [ -S "$s" ]; then echo sock=yes; fi
  l=$(grep -m 1 '"meshd started"' "$d/meshd.log" 2>/dev/null); if [ -n "$l" ]; then echo "started=$l"; fi
done
`
}

export interface StartSpec {
  installDir: string
  dir: string
  /** systemd runs there and we may use it (root or sudo): a transient unit. */
  systemd: boolean
  unit: string
  stopGraceSec: number
  sudo: boolean
}

/**
 * Starts the node and prints its pid (or the unit). Under systemd, a
 * transient unit whose stop escalates to SIGKILL after the grace; otherwise
 * its own session (setsid nohup) so it outlives this SSH session.
 */
export function startScript (s: StartSpec): string {
  const d = burstDir(s.installDir, s.dir)
  const D = shq(d)
  const bin = shq(`${s.installDir.replace(/\/+$/, '')}/current/bin/meshd`)
  const cfg = shq(`${d}/meshd.json`)
  if (s.systemd) {
    const sudo = s.sudo ? 'sudo -n ' : ''
    return `set -e
${sudo}systemd-run --quiet --collect --unit ${shq(s.unit)} -p TimeoutStopSec=${s.stopGraceSec} -p KillMode=mixed -p StandardOutput=append:${d}/meshd.log -p StandardError=append:${d}/meshd.log ${bin} start --config ${cfg}
echo ${shq(s.unit)} > ${D}/unit
echo unit=${shq(s.unit)}
`
  }
  return `set -e
cd ${D}
setsid nohup ${bin} start --config ${cfg} >> ${D}/meshd.log 2>&1 < /dev/null &
echo $! > ${D}/meshd.pid
echo pid=$!
`
}

/**
 * SIGTERM once (meshd drains; a second SIGTERM would cut the drain), and a
 * watchdog on the host that SIGKILLs it when it still runs after the grace —
 * on the host, so it happens even when the leader is gone meanwhile.
 */
export function stopScript (installDir: string, dir: string, graceSec: number, sudo: boolean): string {
  const d = shq(burstDir(installDir, dir))
  const s = sudo ? 'sudo -n ' : ''
  return `${aliveTest(d)}
if [ "$alive" = no ]; then echo gone; exit 0; fi
if [ -f ${d}/unit ]; then
  ${s}systemctl stop --no-block "$(cat ${d}/unit)"
else
  p=$(cat ${d}/meshd.pid)
  kill -TERM "$p"
  # The watchdog ends as soon as the node does: nothing of meshd lingers on the host.
  setsid sh -c 'i=0; while kill -0 '"$p"' 2>/dev/null; do if [ $i -ge ${graceSec} ]; then kill -KILL -- -'"$p"' 2>/dev/null; kill -KILL '"$p"'; break; fi; sleep 1; i=$((i+1)); done' > /dev/null 2>&1 < /dev/null &
fi
echo stopping
`
}

/** SIGKILL now (the grace ran out and the watchdog did not do it). */
export function killScript (installDir: string, dir: string, sudo: boolean): string {
  const d = shq(burstDir(installDir, dir))
  const s = sudo ? 'sudo -n ' : ''
  return `if [ -f ${d}/unit ]; then ${s}systemctl kill --signal=KILL "$(cat ${d}/unit)" 2>/dev/null; elif [ -f ${d}/meshd.pid ]; then p=$(cat ${d}/meshd.pid); kill -KILL -- -"$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; fi; true\n`
}

/**
 * The process is gone: its secrets, config and state go; `key.json` stays
 * (rewritten with terminated_at by the caller) so the key is never reused.
 */
export function cleanupScript (installDir: string, dir: string): string {
  const d = shq(burstDir(installDir, dir))
  return `cd ${d} && rm -rf meshd.json swarm.key meshd.pid unit state admin.sock meshd.json.tmp swarm.key.tmp\n`
}

/** Gives a claim back (nothing ran): the whole directory goes, the key may be used again. */
export function releaseScript (installDir: string, dir: string): string {
  return `rm -rf ${shq(burstDir(installDir, dir))}\n`
}
