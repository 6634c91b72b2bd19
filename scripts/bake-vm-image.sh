#!/usr/bin/env bash
# Bakes a boot image for task VMs: Container-Optimized OS with images already pulled, so a VM skips
# their pulls (tens of seconds for a large image) at every start: the agent image (AGENT_IMAGE), which
# every VM runs, and any task images, such as the worker image of `logreg`. Docker then pulls only the
# layers of a newer tag that differ. Then point the dispatcher at it:
# TF_VAR_vm_image_family=<family> TF_VAR_vm_image_project=<project> ./deploy.sh.
#
#   scripts/bake-vm-image.sh --project P --zone Z --image IMAGE_URI [--image IMAGE_URI]...
#       [--family pipeline-worker-cos] [--subnet SUBNET --service-account EMAIL]
#
# --subnet and --service-account put the builder where the task VMs run, as the account they run as
# (terraform output vm_subnetwork and worker_service_account): a project made by setup.sh may have no
# default network, and the default Compute Engine account may not read the image's repository. With a
# subnet the builder has no external IP: the subnet's Private Google Access reaches Artifact Registry.
#
# It creates a builder VM from cos-stable whose start-up script pulls the images named in the
# metadata key `pipeline-bake-images` (data, not part of any script), waits for it to report on the
# serial port, stops it, makes an image of its disk in the family, and deletes the builder (also on
# failure). Needs gcloud, logged in, with the Compute API enabled.
set -euo pipefail

usage() {
  echo "usage: $0 --project PROJECT --zone ZONE --image IMAGE_URI [--image IMAGE_URI]..." \
    "[--family FAMILY] [--subnet SUBNET] [--service-account EMAIL]" >&2
  exit 2
}

project="" zone="" family="pipeline-worker-cos" subnet="" service_account=""
images=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --project) project="${2:-}"; shift 2 ;;
    --zone) zone="${2:-}"; shift 2 ;;
    --image) images+=("${2:-}"); shift 2 ;;
    --family) family="${2:-}"; shift 2 ;;
    --subnet) subnet="${2:-}"; shift 2 ;;
    --service-account) service_account="${2:-}"; shift 2 ;;
    *) usage ;;
  esac
done
[[ -n "$project" && -n "$zone" && ${#images[@]} -gt 0 ]] || usage
# One metadata value, the images separated by spaces: each must be a plain reference, which has none
# (nor a comma, which gcloud's --metadata splits at), and cannot be read as an option of docker pull.
for image in "${images[@]}"; do
  [[ "$image" =~ ^[A-Za-z0-9][A-Za-z0-9./:@_-]*$ ]] || { echo "not an image reference: $image" >&2; usage; }
done
command -v gcloud >/dev/null || { echo "gcloud is not installed" >&2; exit 1; }

builder="pipeline-bake-$(date +%Y%m%d%H%M%S)"
image_name="${family}-$(date +%Y%m%d%H%M%S)"
startup="$(mktemp)"
cleanup() {
  rm -f "$startup"
  gcloud compute instances delete "$builder" --project "$project" --zone "$zone" --quiet >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The builder's start-up script: reads the images from metadata, logs in to Artifact Registry with
# the VM's token when needed, pulls each, and says on the serial port whether all were pulled.
cat >"$startup" <<'SCRIPT'
#!/bin/bash
set -euo pipefail
md() { curl -sf -H 'Metadata-Flavor: Google' "http://metadata.google.internal/computeMetadata/v1/$1"; }
read -r -a images <<<"$(md instance/attributes/pipeline-bake-images)"
export HOME=/var/lib/bake
mkdir -p "$HOME"
status=pulled
for image in "${images[@]}"; do
  registry="${image%%/*}"
  if [[ "$registry" == *-docker.pkg.dev || "$registry" == *gcr.io ]]; then
    md instance/service-accounts/default/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/' |
      docker login -u oauth2accesstoken --password-stdin "https://$registry"
  fi
  docker pull "$image" || status=failed
done
rm -rf "$HOME/.docker" # no credential, however short-lived, goes into the image
echo "pipeline-bake: $status" >/dev/ttyS0
SCRIPT

placement=()
if [[ -n "$subnet" ]]; then placement+=(--subnet "$subnet" --no-address); fi
if [[ -n "$service_account" ]]; then placement+=(--service-account "$service_account"); fi

echo "creating builder $builder"
gcloud compute instances create "$builder" --project "$project" --zone "$zone" \
  --image-family cos-stable --image-project cos-cloud --machine-type e2-standard-2 \
  --metadata-from-file startup-script="$startup" --metadata pipeline-bake-images="${images[*]}" \
  "${placement[@]}" \
  --scopes cloud-platform --shielded-secure-boot --shielded-vtpm --shielded-integrity-monitoring >/dev/null

echo "waiting for the pull of ${images[*]}"
for _ in $(seq 1 120); do
  serial="$(gcloud compute instances get-serial-port-output "$builder" --project "$project" --zone "$zone" 2>/dev/null || true)"
  if grep -q 'pipeline-bake: pulled' <<<"$serial"; then break; fi
  if grep -q 'pipeline-bake: failed' <<<"$serial"; then echo "the builder could not pull all of ${images[*]}" >&2; exit 1; fi
  sleep 5
done
grep -q 'pipeline-bake: pulled' <<<"$serial" || { echo "timed out waiting for the pull" >&2; exit 1; }

gcloud compute instances stop "$builder" --project "$project" --zone "$zone" --quiet >/dev/null
gcloud compute images create "$image_name" --project "$project" --family "$family" \
  --source-disk "$builder" --source-disk-zone "$zone" >/dev/null
echo "baked $image_name in family $family; deploy with it:" \
  "TF_VAR_vm_image_family=$family TF_VAR_vm_image_project=$project ./deploy.sh"
