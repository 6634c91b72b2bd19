// Container-Optimized OS's own tools, as stand-ins for a VM made of a container (images.ts's
// ensureCosStandInImage): COS's `docker-credential-gcr`, which gives the docker CLI the VM's token
// from the metadata server, and `poweroff`, which here only records that it was called. Put in a
// folder that comes first on the stand-in's PATH; each records what it was asked in /opt/record.
import fs from 'node:fs';
import path from 'node:path';

// The docker CLI's credential helper protocol (`get`: the server on stdin, JSON credentials on
// stdout), answered as COS's docker-credential-gcr does: with the VM's token from the metadata server.
const CREDENTIAL_HELPER = `#!/bin/bash
set -euo pipefail
case "$1" in
  configure-docker)
    registries="\${2#--registries=}"
    mkdir -p "$HOME/.docker"
    printf '{"credHelpers": {"%s": "gcr"}}\\n' "$registries" > "$HOME/.docker/config.json"
    echo "$registries" >> /opt/record/credential-helper-configured ;;
  get)
    token="$(curl --silent --fail -H 'Metadata-Flavor: Google' \\
      "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token" |
      sed -n 's/.*"access_token" *: *"\\([^"]*\\)".*/\\1/p')"
    printf '{"Username": "oauth2accesstoken", "Secret": "%s"}\\n' "$token" ;;
  *) exit 1 ;;
esac
`;
const POWEROFF = `#!/bin/bash\necho powered off >> /opt/record/poweroff\n`;

/** Writes the stand-ins into `dir` (made if missing), executable; returns `dir`. */
export function writeCosTools(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'docker-credential-gcr'), CREDENTIAL_HELPER, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'poweroff'), POWEROFF, { mode: 0o755 });
  return dir;
}
