#!/usr/bin/env bash
# Waits for a job's results and downloads them: polls the output bucket of the pipeline deployed
# by ./setup.sh for OBJECT/_SUCCESS (every 5 s; RESULTS_POLL_SECONDS overrides), then copies
# everything under OBJECT/ (predictions, model, logs, _SUCCESS) into DIR.
#
#   scripts/results.sh OBJECT [--dest DIR] [--timeout SECONDS]
#
# DIR defaults to ./results/OBJECT, SECONDS to 1800. Exits 1 on timeout.
set -euo pipefail

usage() {
  echo "usage: scripts/results.sh OBJECT [--dest DIR] [--timeout SECONDS]" >&2
  exit 2
}

die() {
  echo "results.sh: $*" >&2
  exit 1
}

require_tool() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (or not on PATH): $2"
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

tf_outputs="{}"
load_outputs() { tf_outputs="$(terraform -chdir="$root/terraform" output -json)"; }

# tf_output NAME: the value of a terraform output; fails when it is null or absent.
tf_output() {
  local value
  value="$(jq -r --arg name "$1" '.[$name].value // empty' <<<"$tf_outputs")"
  [[ -n "$value" ]] || die "terraform output $1 is missing: run ./setup.sh first"
  printf '%s\n' "$value"
}

object="" dest="" timeout=1800
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest) [[ $# -ge 2 && -n "$2" ]] || usage; dest="$2"; shift 2 ;;
    --timeout) [[ $# -ge 2 ]] || usage; timeout="$2"; shift 2 ;;
    --) [[ $# -eq 2 && -z "$object" ]] || usage; object="$2"; shift 2 ;;
    -*) usage ;;
    *) [[ -z "$object" ]] || usage; object="$1"; shift ;;
  esac
done
[[ -n "$object" ]] || usage
[[ "$timeout" =~ ^[0-9]+$ ]] || { echo "results.sh: --timeout is a number of seconds, not $timeout" >&2; usage; }
interval="${RESULTS_POLL_SECONDS:-5}"
[[ "$interval" =~ ^[0-9]+$ && "$interval" -gt 0 ]] || die "RESULTS_POLL_SECONDS is a positive number of seconds, not $interval"
object="${object%/}"
dest="${dest:-results/$object}"
[[ "$dest" != -* ]] || dest="./$dest"

require_tool gcloud "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"
require_tool terraform "install Terraform: https://developer.hashicorp.com/terraform/install"
require_tool jq "install jq: https://jqlang.github.io/jq/download/ (apt-get install jq, brew install jq)"

load_outputs
bucket="$(tf_output output_bucket)"
marker="gs://$bucket/$object/_SUCCESS"

echo "==> waiting for $marker (up to ${timeout}s)"
deadline=$((SECONDS + timeout))
last_error=""
until last_error="$(gcloud storage ls "$marker" 2>&1 >/dev/null)"; do
  remaining=$((deadline - SECONDS))
  if [[ $remaining -le 0 ]]; then
    echo "results.sh: timed out after ${timeout}s waiting for $marker" >&2
    [[ -z "$last_error" ]] || echo "results.sh: last answer of gcloud: $last_error" >&2
    echo "results.sh: see the job with the dispatcher's GET /jobs, or wait longer with --timeout" >&2
    exit 1
  fi
  sleep $((remaining < interval ? remaining : interval))
done

echo "==> downloading gs://$bucket/$object/ into $dest"
mkdir -p -- "$dest"
gcloud storage cp --recursive "gs://$bucket/$object/*" "$dest"
echo "Results of $object are in $dest"
