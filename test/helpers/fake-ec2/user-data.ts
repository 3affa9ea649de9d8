/**
 * Interim user data for the boot tests, written from the contract
 * (/providers/aws/boot-spec.ts and the aws provider's user data section):
 * download the bundle (curl, else wget), check its sha256, unpack it into
 * releases/<sha> atomically, switch `current`, write the boot spec with
 * umask 077, exec `meshd boot-ec2`. providers/aws/user-data.ts (the aws
 * provider's builder) replaces it: the tests import `userDataScript` from
 * here only, so the swap is this one import.
 */
import { BOOT_SPEC_PATH, type BootSpec } from '../../../providers/aws/boot-spec.ts'
import { shq } from '../../../providers/ssh/remote.ts'

export interface UserDataInput { bundleUrl: string, bundleSha256: string, spec: BootSpec }

export function userDataScript ({ bundleUrl, bundleSha256, spec }: UserDataInput): string {
  const I = shq(spec.install_dir)
  const S = shq(bundleSha256)
  return `#!/bin/sh
set -eu
mkdir -p ${I}/releases
cd ${I}
dl=$(mktemp ${I}/.download-XXXXXX)
new=${I}/releases/.new-$$
trap 'rm -rf "$dl" "$new"' EXIT
if command -v curl >/dev/null 2>&1; then curl -fsS --retry 5 --retry-connrefused -o "$dl" ${shq(bundleUrl)}
else wget -q -O "$dl" ${shq(bundleUrl)}; fi
echo ${S}"  $dl" | sha256sum -c --quiet - || { echo "the bundle at ${bundleUrl} does not have sha256 ${bundleSha256}" >&2; exit 1; }
if [ ! -d releases/${S} ]; then
  mkdir "$new" && tar -xzf "$dl" --strip-components=1 -C "$new" && mv "$new" releases/${S}
fi
ln -sfn releases/${S} .current-$$ && mv -T .current-$$ current
mkdir -p ${shq(BOOT_SPEC_PATH.replace(/\/[^/]+$/, ''))}
(umask 077 && cat > ${shq(BOOT_SPEC_PATH)}.tmp <<'MESHD_BOOT_SPEC'
${JSON.stringify(spec)}
MESHD_BOOT_SPEC
mv ${shq(BOOT_SPEC_PATH)}.tmp ${shq(BOOT_SPEC_PATH)})
rm -f "$dl"; trap - EXIT
exec ${I}/current/bin/meshd boot-ec2 --spec ${shq(BOOT_SPEC_PATH)}
`
}
