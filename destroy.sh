#!/usr/bin/env bash
# Removes a pipeline deployed by ./setup.sh: every object in its buckets, then every resource.
#
#   ./destroy.sh [--yes]
#
# Without --yes it asks for the project id to be typed back (read from standard input).
# Steps: terraform apply with deletion_protection=false and the images now deployed (Cloud Run
# checks deletion protection in terraform state, so a -var on destroy alone is not enough); delete
# task VMs still running (they would keep the task subnet from being deleted); empty the input,
# output and shared buckets (all object versions; an empty bucket is fine); terraform destroy.
set -euo pipefail

usage() {
  echo "usage: ./destroy.sh [--yes]" >&2
  exit 2
}

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/common.sh"

# empty_bucket NAME: deletes every object (and version) in it; an empty bucket is not an error.
empty_bucket() {
  local err
  echo "==> emptying gs://$1"
  if ! err="$(gcloud storage rm --recursive --all-versions "gs://$1/**" 2>&1 >/dev/null)"; then
    if [[ "$err" == *"matched no objects"* ]]; then
      echo "    (already empty)"
    else
      printf '%s\n' "$err" >&2
      die "could not empty gs://$1"
    fi
  fi
}

yes=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --yes | -y) yes=true; shift ;;
    *) usage ;;
  esac
done

require_deploy_tools

cd "$(dirname "${BASH_SOURCE[0]}")"

load_outputs
project="$(tf_output project_id)"
region="$(tf_output region)"
zone="$(tf_output zone)"
vm_label="$(tf_output vm_label)"
input_bucket="$(tf_output input_bucket)"
output_bucket="$(tf_output output_bucket)"
shared_bucket="$(tf_output shared_bucket)"
buckets=("$input_bucket" "$output_bucket" "$shared_bucket")

if [[ "$yes" != true ]]; then
  echo "This deletes the pipeline in project $project: every object in gs://${buckets[0]}, gs://${buckets[1]}," >&2
  echo "gs://${buckets[2]}, the images, topics, service accounts and the rest. It cannot be undone." >&2
  printf 'Type the project id (%s) to confirm: ' "$project" >&2
  answer=""
  read -r answer || true
  [[ "$answer" == "$project" ]] || die "not confirmed (expected $project): nothing was deleted"
fi

gcloud auth print-access-token >/dev/null 2>&1 ||
  die "gcloud is not logged in: run gcloud auth login and gcloud auth application-default login"

dispatcher_image="$(current_image google_cloud_run_v2_service)"
worker_image="$(current_image google_cloud_run_v2_job)"
agent_image="$(current_agent_image "$dispatcher_image" "$worker_image")"
vars=(-var "project_id=$project" -var "region=$region" -var "zone=$zone"
  -var "dispatcher_image=$dispatcher_image" -var "worker_image=$worker_image" -var "agent_image=$agent_image"
  -var "deletion_protection=false")

echo "==> terraform apply: deletion_protection=false"
tf apply -input=false -auto-approve "${vars[@]}"

# Task VMs are not terraform's, and the task subnet cannot be deleted while one is still in it: delete
# this deployment's (labelled pipeline=<name_prefix>, as its reaper knows them) first.
echo "==> deleting task VMs left in $zone"
vm_names="$(gcloud compute instances list --project "$project" --zones "$zone" \
  --filter "labels.pipeline=${vm_label}" --format 'value(name)')"
vms=()
while IFS= read -r vm; do
  [[ -z "$vm" ]] || vms+=("$vm")
done <<<"$vm_names"
if ((${#vms[@]} > 0)); then
  gcloud compute instances delete "${vms[@]}" --project "$project" --zone "$zone" --quiet
else
  echo "    (none)"
fi

for bucket in "${buckets[@]}"; do
  empty_bucket "$bucket"
done

echo "==> terraform destroy"
tf destroy -input=false -auto-approve "${vars[@]}"

echo
echo "The pipeline in $project is gone."
