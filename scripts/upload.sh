#!/usr/bin/env bash
# Starts pipeline jobs: copies each file into the input bucket of the pipeline deployed by
# ./setup.sh. The object is named after the file (PREFIX + its base name); each upload is one job.
#
#   scripts/upload.sh FILE... [--runtime vm|cloud-run-job] [--prefix PATH/]
#
# --runtime sets the object metadata pipeline-runtime, which routing rules can match (`runtime`).
# File names are data: they pass to gcloud as single arguments, never through eval or a shell.
# A name with a wildcard character (* ? [ ]) is streamed from standard input, since gcloud storage
# would expand it as a pattern.
set -euo pipefail

usage() {
  echo "usage: scripts/upload.sh FILE... [--runtime vm|cloud-run-job] [--prefix PATH/]" >&2
  exit 2
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$root/terraform"
# shellcheck source=scripts/lib/common.sh
source "$root/scripts/lib/common.sh"

files=() runtime="" prefix=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runtime) [[ $# -ge 2 ]] || usage; runtime="$2"; shift 2 ;;
    --prefix) [[ $# -ge 2 ]] || usage; prefix="$2"; shift 2 ;;
    --) shift; files+=("$@"); break ;;
    -*) usage ;;
    *) files+=("$1"); shift ;;
  esac
done
[[ ${#files[@]} -gt 0 ]] || usage
case "$runtime" in
  "" | vm | cloud-run-job) ;;
  *) echo "upload.sh: --runtime is vm or cloud-run-job, not $runtime" >&2; usage ;;
esac
prefix="${prefix#/}"
[[ -z "$prefix" || "$prefix" == */ ]] || prefix="$prefix/"

for file in "${files[@]}"; do
  [[ -f "$file" ]] || die "not a file: $file (nothing was uploaded)"
done

require_deploy_tools

load_outputs
bucket="$(tf_output input_bucket)"

flags=()
[[ -z "$runtime" ]] || flags+=("--custom-metadata=pipeline-runtime=$runtime")

for file in "${files[@]}"; do
  object="${prefix}$(basename -- "$file")"
  echo "==> $file -> gs://$bucket/$object"
  if [[ "$file" == *[][*?]* ]]; then
    gcloud storage cp "${flags[@]}" - "gs://$bucket/$object" <"$file"
  else
    [[ "$file" != -* ]] || file="./$file"
    gcloud storage cp "${flags[@]}" "$file" "gs://$bucket/$object"
  fi
done

echo "Uploaded ${#files[@]} file(s); fetch results with: scripts/results.sh ${prefix}OBJECT"
