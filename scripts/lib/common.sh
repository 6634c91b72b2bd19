# Helpers shared by the deploy scripts (sourced, not run): tool checks, terraform outputs and state,
# image tags. Scripts that do not run from the repository root set TF_DIR before sourcing this.
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

image_tag() {
  local sha
  sha="$(git rev-parse --short HEAD 2>/dev/null || true)"
  printf '%s%s\n' "$(date -u +%Y%m%d-%H%M%S)" "${sha:+-$sha}"
}

tf_outputs="{}"
