# Helpers shared by the deploy scripts (sourced, not run): tool checks, terraform outputs and state,
# terraform apply with retries of transient failures, the image build, image tags. Scripts that do
# not run from the repository root set TF_DIR before sourcing this.
# shellcheck shell=bash

# die MESSAGE: stops the calling script with its name and the message.
die() {
  echo "${0##*/}: $*" >&2
  exit 1
}

# require_tool NAME HINT: stops with a message naming the tool and how to get it.
require_tool() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (or not on PATH): $2"
}

TF_DIR="${TF_DIR:-terraform}"
# require_deploy_tools: the tools every deploy script uses.
require_deploy_tools() {
  require_tool gcloud "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"
  require_tool terraform "install Terraform: https://developer.hashicorp.com/terraform/install"
  require_tool jq "install jq: https://jqlang.github.io/jq/download/ (apt-get install jq, brew install jq)"
}

tf() { terraform -chdir="$TF_DIR" "$@"; }

load_outputs() { tf_outputs="$(tf output -json)"; }

# tf_output NAME: the value of a terraform output; fails when it is null or absent.
tf_output() {
  local value
  value="$(jq -r --arg name "$1" '.[$name].value // empty' <<<"$tf_outputs")"
  [[ -n "$value" ]] || die "terraform output $1 is missing: run ./setup.sh first"
  printf '%s\n' "$value"
}

# current_image TYPE: the image of the deployed service or job as terraform state records it, or
# nothing. Applies pass these back, so an apply for another reason never removes the service or job.
current_image() {
  local type="$1" path
  case "$type" in
    google_cloud_run_v2_service) path='.values.template[0].containers[0].image' ;;
    google_cloud_run_v2_job) path='.values.template[0].template[0].containers[0].image' ;;
  esac
  tf show -json | jq -r --arg type "$type" \
    "[.. | objects | select(.type? == \$type and .mode? == \"managed\") | ($path)? // empty] | first // empty"
}

# current_agent_image DISPATCHER_IMAGE WORKER_IMAGE: the image the deployed dispatcher gives its task
# VMs as their agent (AGENT_IMAGE in its environment, as terraform state records it), or nothing. A
# dispatcher deployed before the agent had an image of its own (jobs/agent) ran it from the worker
# image: then WORKER_IMAGE, so that an apply for another reason keeps what runs.
current_agent_image() {
  local dispatcher="$1" worker="$2" image
  image="$(tf show -json | jq -r '[.. | objects | select(.type? == "google_cloud_run_v2_service" and .mode? == "managed") | (.values.template[0].containers[0].env[]? | select(.name? == "AGENT_IMAGE") | .value)] | first // empty')"
  if [[ -z "$image" && -n "$dispatcher" ]]; then
    image="$worker"
  fi
  printf '%s\n' "$image"
}

# Failures of terraform apply that pass by themselves on a fresh project: new grants and service
# accounts take a while to propagate through IAM, APIs just enabled take a while to answer, and
# Firestore refuses index work while other index work is under way. Each is an ERE matched against
# terraform's error output. Any other failure is final.
TF_TRANSIENT_ERRORS=(
  'Error 403'
  'does not have permission'
  'Error 409: .*(index|[Cc]oncurren|contention)'
  'Service account .* does not exist'
  'Invalid resource state'
)

# tf_apply_retrying ARG...: terraform apply ARG..., tried again when it fails with one of the
# TF_TRANSIENT_ERRORS, TF_APPLY_PAUSE_SECONDS apart (default 30) and TF_APPLY_ATTEMPTS times in all
# (default 3); any other failure, or the last attempt's, stops the script with the reason. Terraform's
# standard output streams as usual; its error output is kept to be matched, then shown.
tf_apply_retrying() {
  local attempts="${TF_APPLY_ATTEMPTS:-3}" pause="${TF_APPLY_PAUSE_SECONDS:-30}"
  local attempt errors pattern transient
  for ((attempt = 1; ; attempt++)); do
    exec 3>&1
    if errors="$(tf apply "$@" 2>&1 1>&3 3>&-)"; then
      exec 3>&-
      [[ -z "$errors" ]] || printf '%s\n' "$errors" >&2
      return 0
    fi
    exec 3>&-
    [[ -z "$errors" ]] || printf '%s\n' "$errors" >&2
    transient=""
    for pattern in "${TF_TRANSIENT_ERRORS[@]}"; do
      if [[ "$errors" =~ $pattern ]]; then
        transient="$pattern"
        break
      fi
    done
    [[ -n "$transient" ]] ||
      die "terraform apply failed, not with an error known to pass by itself (IAM propagation, Firestore index contention): stopping"
    ((attempt < attempts)) ||
      die "terraform apply failed $attempt times with a transient error (/$transient/): stopping; if it is a permission the account running this lacks, see the README (Deploy from zero), else run it again later"
    echo "${0##*/}: terraform apply failed with a transient error (/$transient/); trying again in ${pause}s (attempt $((attempt + 1)) of $attempts)" >&2
    sleep "$pause"
  done
}

# submit_build PROJECT REGION IMAGE_URI TAG: Cloud Build builds and pushes the three images
# (cloudbuild.yaml) as the pipeline's build account, from source staged in terraform's bucket
# (terraform/build.tf). Needs the terraform outputs loaded (load_outputs).
submit_build() {
  local project="$1" region="$2" image_uri="$3" tag="$4" account bucket
  account="$(tf_output build_service_account)"
  bucket="$(tf_output build_source_bucket)"
  gcloud builds submit --project "$project" --region "$region" --config cloudbuild.yaml \
    "--service-account=${account}" "--gcs-source-staging-dir=gs://${bucket}/source" \
    "--substitutions=_IMAGE_URI=${image_uri},_TAG=${tag}" .
}

image_tag() {
  local sha
  sha="$(git rev-parse --short HEAD 2>/dev/null || true)"
  printf '%s%s\n' "$(date -u +%Y%m%d-%H%M%S)" "${sha:+-$sha}"
}

tf_outputs="{}"
