# Helpers shared by setup.sh, deploy.sh and destroy.sh (sourced, not run): tool checks, terraform
# outputs and state, image tags. They expect to run from the repository root and set -euo pipefail.
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

tf() { terraform -chdir=terraform "$@"; }

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
