/**
 * The shell that installs a meshd bundle on a host, shared by the providers
 * that install one (ssh uploads it over SFTP, an EC2 instance's user data
 * downloads it): pure string builders, POSIX sh, coreutils, tar. The layout:
 *
 *   <install_dir>/releases/<sha256>/   one unpacked bundle each (bin/meshd ...)
 *   <install_dir>/current -> releases/<sha256>   switched atomically
 *   <install_dir>/installed.json       {"sha256","version","installed_at"}
 */

/** Single-quotes a string for sh. */
export function shq (s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/**
 * Checks the uploaded (ssh) or downloaded (EC2 user data) file, unpacks it into a new directory, then switches
 * `current` with a rename: a failed or cut upload never leaves a broken
 * install (the old `current` stays), and nothing half-written remains.
 */
export function unpackScript (installDir: string, upload: string, sha: string, tag: string, source: 'uploaded' | 'downloaded' = 'uploaded'): string {
  const I = shq(installDir)
  const S = shq(sha)
  const f = shq(upload)
  const nu = shq(`releases/.new-${tag}`)
  return `set -e
cd ${I}
trap 'rm -rf ${f} ${nu} .current-${tag} .installed-${tag}' EXIT
echo ${S}"  "${f} | sha256sum -c --quiet >/dev/null 2>&1 || { echo "the ${source} bundle is damaged (sha256 differs: a cut connection?)" >&2; exit 1; }
mkdir -p releases
mkdir ${nu}
tar -xzf ${f} -C ${nu} || { echo "unpacking failed (disk full?): $(df -Pk . | awk 'NR==2{print $4}') KB free in ${installDir}" >&2; exit 1; }
[ -x ${nu}/bin/meshd ] || { echo "the bundle has no executable bin/meshd" >&2; exit 1; }
if [ -d releases/${S} ]; then rm -rf ${nu}; else mv ${nu} releases/${S}; fi
ln -sfn releases/${S} .current-${tag}
mv -T .current-${tag} current
v=$(sed -n 's/.*"version": *"\\([^"]*\\)".*/\\1/p' current/package.json 2>/dev/null | head -n 1)
printf '{"sha256":"%s","version":"%s","installed_at":%s}\\n' ${S} "\${v:-?}" "$(date +%s)" > .installed-${tag}
mv .installed-${tag} installed.json
`
}

