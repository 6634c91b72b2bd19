#!/usr/bin/env bash
# Deploys the pipeline to a Google Cloud project, from nothing to a running dispatcher.
#
#   ./setup.sh --project PROJECT [--region REGION] [--zone ZONE]
#
# PROJECT defaults to `gcloud config get-value project`, REGION to `gcloud config get-value
# run/region` or us-central1, ZONE to REGION-b. Steps:
#   0. the bootstrap terraform cannot do itself: enable the Cloud Resource Manager and Service Usage
#      APIs (data.google_project and google_project_service call them before anything is enabled)
#      and Pub/Sub, and create the Pub/Sub service agent, which terraform grants roles to and which
#      a new project may not have yet;
#   1. terraform init, then terraform apply of the base: APIs, buckets, topics, the task VMs'
#      network, the Artifact Registry repository, the service accounts and their grants (no service
#      or job until images exist);
#   2. Cloud Build builds and pushes the dispatcher, worker and VM agent images (cloudbuild.yaml; no
#      local Docker needed) as the build account, tagged with a timestamp and the git commit;
#   3. terraform apply again with the three images: the dispatcher service (whose AGENT_IMAGE every
#      task VM runs) and the worker job.
# Safe to run again: terraform is idempotent, and a second run keeps the images already deployed
# during step 1, then ships freshly built ones in step 3. An apply that fails with an error known to
# pass by itself (IAM propagation, Firestore index contention; TF_TRANSIENT_ERRORS in
# scripts/lib/common.sh) is tried again, up to 3 times 30 s apart; any other failure stops at once.
# Settings travel as -var flags, never in a file; deploy.sh and destroy.sh read them back from
# `terraform output`.
set -euo pipefail

usage() {
  echo "usage: ./setup.sh --project PROJECT [--region REGION] [--zone ZONE]" >&2
  echo "  PROJECT defaults to: gcloud config get-value project" >&2
  exit 2
}

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/common.sh"

project="" region="" zone=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --project) [[ $# -ge 2 ]] || usage; project="$2"; shift 2 ;;
    --region) [[ $# -ge 2 ]] || usage; region="$2"; shift 2 ;;
    --zone) [[ $# -ge 2 ]] || usage; zone="$2"; shift 2 ;;
    *) usage ;;
  esac
done

require_deploy_tools

cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ -z "$project" ]]; then
  project="$(gcloud config get-value project 2>/dev/null || true)"
  [[ -n "$project" && "$project" != "(unset)" ]] || {
    echo "setup.sh: no project: pass --project PROJECT or run gcloud config set project PROJECT" >&2
    usage
  }
fi
if [[ -z "$region" ]]; then
  region="$(gcloud config get-value run/region 2>/dev/null || true)"
  [[ -n "$region" && "$region" != "(unset)" ]] || region="us-central1"
fi
zone="${zone:-${region}-b}"
[[ "$project" =~ ^[a-z][a-z0-9.:-]{4,61}[a-z0-9]$ ]] || { echo "setup.sh: not a project id: $project" >&2; usage; }
[[ "$region" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || { echo "setup.sh: not a region: $region" >&2; usage; }
[[ "$zone" == "$region"-[a-z] ]] || { echo "setup.sh: zone $zone is not in region $region" >&2; usage; }

gcloud auth print-access-token >/dev/null 2>&1 ||
  die "gcloud is not logged in: run gcloud auth login and gcloud auth application-default login"

base_vars=(-var "project_id=$project" -var "region=$region" -var "zone=$zone")

# https://cloud.google.com/resource-manager/reference/rest (data.google_project),
# https://cloud.google.com/service-usage/docs/enable-disable (google_project_service)
echo "==> enabling the APIs terraform needs before its first plan"
gcloud services enable cloudresourcemanager.googleapis.com serviceusage.googleapis.com \
  pubsub.googleapis.com --project "$project" --quiet

# Run again, it gives back the agent it made the first time.
# https://cloud.google.com/sdk/gcloud/reference/beta/services/identity/create
echo "==> the Pub/Sub service agent"
gcloud beta services identity create --service=pubsub.googleapis.com --project="$project" --quiet >/dev/null ||
  die "could not create the Pub/Sub service agent (gcloud beta services identity create; the beta component of gcloud is needed)"

echo "==> terraform init"
tf init -input=false

echo "==> terraform apply: the base (project $project, region $region, zone $zone)"
dispatcher_image="$(current_image google_cloud_run_v2_service)"
worker_image="$(current_image google_cloud_run_v2_job)"
agent_image="$(current_agent_image "$dispatcher_image" "$worker_image")"
tf_apply_retrying -input=false -auto-approve "${base_vars[@]}" \
  -var "dispatcher_image=$dispatcher_image" -var "worker_image=$worker_image" -var "agent_image=$agent_image"

load_outputs
image_uri="$(tf_output image_uri)"
tag="$(image_tag)"

echo "==> Cloud Build: ${image_uri}/dispatcher:${tag}, ${image_uri}/worker:${tag} and ${image_uri}/agent:${tag}"
submit_build "$project" "$region" "$image_uri" "$tag"

echo "==> terraform apply: the dispatcher service (its task VMs' agent: ${image_uri}/agent:${tag}) and the worker job"
tf_apply_retrying -input=false -auto-approve "${base_vars[@]}" \
  -var "dispatcher_image=${image_uri}/dispatcher:${tag}" -var "worker_image=${image_uri}/worker:${tag}" \
  -var "agent_image=${image_uri}/agent:${tag}"

load_outputs
service_url="$(tf_output service_url)"
input_bucket="$(tf_output input_bucket)"
output_bucket="$(tf_output output_bucket)"

cat <<EOF

The pipeline is deployed in $project ($region).
  dispatcher:     $service_url
  input bucket:   gs://$input_bucket
  output bucket:  gs://$output_bucket

Next steps:
  scripts/upload.sh data.csv [--runtime vm|cloud-run-job]   # start a job
  scripts/results.sh data.csv                               # wait for it, download its results
  ./deploy.sh                                               # ship a new version
  ./destroy.sh                                              # remove everything
EOF
