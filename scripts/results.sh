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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$root/terraform"
# shellcheck source=scripts/lib/common.sh
source "$root/scripts/lib/common.sh"

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

require_deploy_tools

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
