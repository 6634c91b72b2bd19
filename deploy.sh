#!/usr/bin/env bash
# Ships a new version of a pipeline deployed by ./setup.sh: builds and pushes new dispatcher, worker
# and VM agent images with Cloud Build (as the build account terraform made), points the service and
# the job at them (the service's AGENT_IMAGE at the agent's, for the task VMs it launches from then
# on), and sends all traffic to the new revision.
#
#   ./deploy.sh
#
# One approach, on purpose: the images change through `terraform apply`, not `gcloud run ... update`.
# Terraform owns the service and the job; updating them behind its back would leave its state
# describing the old images, and the next apply (setup.sh, destroy.sh) would roll them back. With
# terraform doing the update, state always names the images that run. Cloud Run creates the new
# revision of the service and the job's next executions use the new image. The only gcloud call
# afterwards is `update-traffic --to-latest`, which is what terraform declares anyway (all traffic on
# the latest revision) and undoes a manual pin (a rollback with --to-revisions), so it adds no drift.
set -euo pipefail

usage() {
  echo "usage: ./deploy.sh   (after ./setup.sh; reads everything from terraform output)" >&2
  exit 2
}

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/common.sh"

[[ $# -eq 0 ]] || usage

require_deploy_tools

cd "$(dirname "${BASH_SOURCE[0]}")"

load_outputs
project="$(tf_output project_id)"
region="$(tf_output region)"
zone="$(tf_output zone)"
image_uri="$(tf_output image_uri)"
service="$(tf_output service_name)"
job="$(tf_output job_name)"
tag="$(image_tag)"
dispatcher_image="${image_uri}/dispatcher:${tag}"
worker_image="${image_uri}/worker:${tag}"
agent_image="${image_uri}/agent:${tag}"

gcloud auth print-access-token >/dev/null 2>&1 ||
  die "gcloud is not logged in: run gcloud auth login and gcloud auth application-default login"

echo "==> Cloud Build: $dispatcher_image, $worker_image and $agent_image"
submit_build "$project" "$region" "$image_uri" "$tag"

echo "==> terraform apply: service $service and job $job on the new images"
tf apply -input=false -auto-approve \
  -var "project_id=$project" -var "region=$region" -var "zone=$zone" \
  -var "dispatcher_image=$dispatcher_image" -var "worker_image=$worker_image" \
  -var "agent_image=$agent_image"

echo "==> all traffic of $service to its latest revision"
gcloud run services update-traffic "$service" --to-latest --region "$region" --project "$project"

load_outputs
echo
echo "Deployed $tag: dispatcher $(tf_output service_url), job $job"
