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

die() {
  echo "upload.sh: $*" >&2
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

require_tool gcloud "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"
require_tool terraform "install Terraform: https://developer.hashicorp.com/terraform/install"
require_tool jq "install jq: https://jqlang.github.io/jq/download/ (apt-get install jq, brew install jq)"

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
