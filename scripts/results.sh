#!/usr/bin/env bash
# Waits for an object's results and downloads them. Every job writes under a prefix of its own; an
# upload's job under OBJECT/GENERATION/, and OBJECT/_LATEST names the newest generation whose job
# succeeded. This polls the output bucket of the pipeline deployed by ./setup.sh (every 5 s;
# RESULTS_POLL_SECONDS overrides) for OBJECT/_LATEST, or with --generation for that generation's
# _SUCCESS, then copies everything under that prefix (predictions, model, logs, _SUCCESS) into DIR.
#
#   scripts/results.sh OBJECT [--generation G] [--dest DIR] [--timeout SECONDS]
#
# DIR defaults to ./results/OBJECT, SECONDS to 1800. Exits 1 on timeout.
set -euo pipefail

usage() {
  echo "usage: scripts/results.sh OBJECT [--generation G] [--dest DIR] [--timeout SECONDS]" >&2
  exit 2
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$root/terraform"
# shellcheck source=scripts/lib/common.sh
source "$root/scripts/lib/common.sh"

object="" dest="" timeout=1800 generation=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest) [[ $# -ge 2 && -n "$2" ]] || usage; dest="$2"; shift 2 ;;
    --generation) [[ $# -ge 2 ]] || usage; generation="$2"; shift 2 ;;
    --timeout) [[ $# -ge 2 ]] || usage; timeout="$2"; shift 2 ;;
    --) [[ $# -eq 2 && -z "$object" ]] || usage; object="$2"; shift 2 ;;
    -*) usage ;;
    *) [[ -z "$object" ]] || usage; object="$1"; shift ;;
  esac
done
[[ -n "$object" ]] || usage
[[ "$timeout" =~ ^[0-9]+$ ]] || { echo "results.sh: --timeout is a number of seconds, not $timeout" >&2; usage; }
[[ -z "$generation" || "$generation" =~ ^[0-9]{1,20}$ ]] || { echo "results.sh: --generation is a number, not $generation" >&2; usage; }
interval="${RESULTS_POLL_SECONDS:-5}"
[[ "$interval" =~ ^[0-9]+$ && "$interval" -gt 0 ]] || die "RESULTS_POLL_SECONDS is a positive number of seconds, not $interval"
object="${object%/}"
dest="${dest:-results/$object}"
[[ "$dest" != -* ]] || dest="./$dest"

require_deploy_tools

load_outputs
bucket="$(tf_output output_bucket)"
if [[ -n "$generation" ]]; then
  marker="gs://$bucket/$object/$generation/_SUCCESS"
else
  marker="gs://$bucket/$object/_LATEST"
fi

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

if [[ -z "$generation" ]]; then
  # The pointer is JSON written by the dispatcher; its generation is digits only, so a pattern reads it
  # without a JSON parser, and the prefix it names is OBJECT/GENERATION/.
  pointer="$(gcloud storage cat "$marker")"
  [[ "$pointer" =~ \"generation\":\"([0-9]{1,20})\" ]] || die "$marker does not name a generation: $pointer"
  generation="${BASH_REMATCH[1]}"
fi
prefix="gs://$bucket/$object/$generation"

echo "==> downloading $prefix/ into $dest"
mkdir -p -- "$dest"
gcloud storage cp --recursive "$prefix/*" "$dest"
echo "Results of $object (generation $generation) are in $dest"
