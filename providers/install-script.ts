/**
 * The shell that installs a meshd bundle on a host, shared by the providers
 * that install one (ssh uploads it over SFTP, an EC2 instance's user data
 * downloads it): pure string builders, POSIX sh, coreutils, tar. The layout:
 *
 *   <install_dir>/releases/<digest>/   one unpacked bundle each (bin/meshd, meshd-bundle.json ...)
 *   <install_dir>/current -> releases/<digest>   switched atomically
 *   <install_dir>/installed.json       {"sha256","contents_sha256","version","installed_at"}
 */

import { BUNDLE_MANIFEST_FILE } from './bundle-manifest.ts'

/** Single-quotes a string for sh. */
export function shq (s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/**
 * Checks the uploaded (ssh) or downloaded (EC2 user data) file, unpacks it
 * into a new directory (the bundle's one top directory stripped), then
 * switches `current` with a rename: a failed or cut upload never leaves a
 * broken install (the old `current` stays), and nothing half-written remains.
 * Releases are named by the bundle's contents digest when the caller knows it
 * (the same sources built again are the same release; the unpacked manifest
 * must carry it), else by the archive's sha256. Once switched, releases other
 * than `current` and the one it replaced are removed (the one before is kept
 * for going back by hand).
 */
export function unpackScript (installDir: string, upload: string, sha: string, digest: string | null, tag: string, source: 'uploaded' | 'downloaded' = 'uploaded'): string {
  const I = shq(installDir)
  const S = shq(sha)
  const D = shq(digest ?? sha)
  const f = shq(upload)
  const nu = shq(`releases/.new-${tag}`)
  const manifestCheck = digest === null
    ? ''
    : `grep -q '"contents_sha256": *"'${D}'"' ${nu}/${BUNDLE_MANIFEST_FILE} 2>/dev/null || { echo "the unpacked bundle's ${BUNDLE_MANIFEST_FILE} does not carry contents_sha256 "${D} >&2; exit 1; }\n`
  return `set -e
cd ${I}
trap 'rm -rf ${f} ${nu} .current-${tag} .installed-${tag}' EXIT
echo ${S}"  "${f} | sha256sum -c --quiet >/dev/null 2>&1 || { echo "the ${source} bundle is damaged (sha256 differs${source === 'uploaded' ? ': a cut connection?' : ''})" >&2; exit 1; }
mkdir -p releases
mkdir ${nu}
tar -xzf ${f} --strip-components=1 -C ${nu} || { echo "unpacking failed (disk full?): $(df -Pk . | awk 'NR==2{print $4}') KB free in ${installDir}" >&2; exit 1; }
[ -x ${nu}/bin/meshd ] || { echo "the bundle has no executable bin/meshd" >&2; exit 1; }
${manifestCheck}prev=$(readlink current 2>/dev/null || true)
if [ -d releases/${D} ]; then rm -rf ${nu}; else mv ${nu} releases/${D}; fi
ln -sfn releases/${D} .current-${tag}
mv -T .current-${tag} current
v=$(sed -n 's/.*"version": *"\\([^"]*\\)".*/\\1/p' current/${BUNDLE_MANIFEST_FILE} 2>/dev/null | head -n 1)
printf '{"sha256":"%s","contents_sha256":"%s","version":"%s","installed_at":%s}\\n' ${S} ${D} "\${v:-?}" "$(date +%s)" > .installed-${tag}
mv .installed-${tag} installed.json
for r in releases/*; do
  [ "$r" = releases/${D} ] || [ "$r" = "$prev" ] || rm -rf "$r"
done
`
}
