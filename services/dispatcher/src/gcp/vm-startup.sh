#!/bin/bash
# The start-up script of every pipeline VM (Container-Optimized OS), the same for every VM: it holds
# no task data and reads none. It runs the agent container (`pipeline-agent`, the agent image's
# entrypoint, with no arguments), which reads the task (metadata key `pipeline-task`, JSON), runs the
# task's image through the Docker API, reports, and deletes the VM.
#
# Metadata it reads: `pipeline-agent-image` (the VM agent's image, jobs/agent: the dispatcher's
# AGENT_IMAGE, set by the launcher) and, when the VM has a GPU, `pipeline-gpu`. Whatever way this script ends (the image cannot be pulled, the agent
# cannot start, the agent crashed), the EXIT trap deletes the VM with its own service account, and
# powers it off if even that fails, so that nothing is left running until maxRunDuration.
#
# On a VM none of the variables below is set. The tests run this script in a container standing in
# for COS, and point it at loopback doubles with the same variables the Google libraries and the
# agent honour: GCE_METADATA_HOST, METADATA_SERVER_DETECTION, COMPUTE_API_ENDPOINT, STORAGE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST,
# AGENT_SHARED_DIR (the shared folder: the same path on the host and in the containers),
# PIPELINE_TOKEN_REGISTRIES (registries besides Google's that get the VM's token) and
# AGENT_STOP_GRACE_SECONDS; the set ones are handed on to the agent. AGENT_CONTAINER_NAME names the
# agent's container (several stand-in VMs share one Docker engine; a VM has its own).
set -euo pipefail

readonly METADATA_URL="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1"
readonly COMPUTE_URL="${COMPUTE_API_ENDPOINT:-https://compute.googleapis.com}/compute/v1"
# The shared files, on the boot disk: COS's /tmp is memory (and noexec). Tasks see them at /tmp/worker.
readonly WORK_DIR="${AGENT_SHARED_DIR:-/var/lib/pipeline/shared}"
readonly AGENT_NAME="${AGENT_CONTAINER_NAME:-pipeline-agent}"
readonly PASSED_TO_AGENT=(GCE_METADATA_HOST METADATA_SERVER_DETECTION COMPUTE_API_ENDPOINT STORAGE_EMULATOR_HOST
  PUBSUB_EMULATOR_HOST PIPELINE_TOKEN_REGISTRIES AGENT_STOP_GRACE_SECONDS)
# docker-credential-gcr writes its configuration under $HOME; the root file system is read-only.
export HOME='/tmp/pipeline-home'

log() {
  echo "pipeline-startup: $*" >&2
}

# metadata PATH: a value from the metadata server; fails if the key is absent.
metadata() {
  curl --silent --show-error --fail --retry 5 --retry-connrefused \
    --header 'Metadata-Flavor: Google' "${METADATA_URL}/$1"
}

# delete_self: the last resort. The token goes to curl on stdin, not on its command line. An
# instance that is not found any more is done: the agent deleted it first.
delete_self() {
  local token project zone name status
  token="$(metadata instance/service-accounts/default/token |
    sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')" || return 1
  project="$(metadata project/project-id)" || return 1
  zone="$(metadata instance/zone)" || return 1 # projects/NUMBER/zones/ZONE
  name="$(metadata instance/name)" || return 1
  status="$(printf 'Authorization: Bearer %s\n' "${token}" |
    curl --silent --show-error --retry 5 --request DELETE --header @- \
      --output /dev/null --write-out '%{http_code}' \
      "${COMPUTE_URL}/projects/${project}/zones/${zone##*/}/instances/${name}")" || return 1
  case "${status}" in
    2?? | 404) return 0 ;;
    *)
      log "the delete was answered with HTTP ${status}"
      return 1
      ;;
  esac
}

on_exit() {
  local status=$?
  trap - EXIT
  log "ending with status ${status}; deleting this VM"
  local try
  for try in 1 2 3; do
    if delete_self >/dev/null; then
      exit "${status}"
    fi
    log "deleting this VM failed (try ${try})"
    sleep 10
  done
  log 'could not delete this VM; powering off'
  poweroff || true
  exit "${status}"
}
trap on_exit EXIT

wait_for_docker() {
  local try
  for try in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      return 0
    fi
    log "waiting for the Docker daemon (${try})"
    sleep 2
  done
  log 'the Docker daemon did not start'
  return 1
}

# token_registry HOST: whether HOST gets the VM's token (Google's registries, or a listed one).
token_registry() {
  case "$1" in
    *-docker.pkg.dev | gcr.io | *.gcr.io) return 0 ;;
    *) ;;
  esac
  local listed
  IFS=',' read -r -a listed <<<"${PIPELINE_TOKEN_REGISTRIES:-}"
  local host
  for host in "${listed[@]}"; do
    [[ "${host}" == "$1" ]] && return 0
  done
  return 1
}

pull() {
  local image=$1 registry=${1%%/*} try
  # Artifact Registry and Container Registry hosts need the VM's credentials; Docker Hub does not.
  if token_registry "${registry}"; then
    docker-credential-gcr configure-docker --registries="${registry}"
  fi
  for try in 1 2 3 4 5; do
    if docker pull "${image}"; then
      return 0
    fi
    log "pulling ${image} failed (try ${try})"
    sleep $((try * 5))
  done
  return 1
}

main() {
  local agent_image docker_group ids agent_user passed name
  agent_image="$(metadata instance/attributes/pipeline-agent-image)"
  mkdir -p "${HOME}" "${WORK_DIR}"

  wait_for_docker
  if [[ "$(metadata instance/attributes/pipeline-gpu 2>/dev/null || true)" == 'true' ]]; then
    # https://cloud.google.com/container-optimized-os/docs/how-to/run-gpus: install the driver, make
    # its files executable from containers, and check that it sees the GPUs.
    log 'installing the GPU driver'
    cos-extensions install gpu
    mount --bind /var/lib/nvidia /var/lib/nvidia
    mount -o remount,exec /var/lib/nvidia
    /var/lib/nvidia/bin/nvidia-smi --list-gpus >&2
  fi
  pull "${agent_image}"
  docker_group="$(stat -c '%g' /var/run/docker.sock)"
  # The agent runs as its image's user (not root): the shared folder it copies files into is theirs.
  # One container tells both ids: `uid=1000(node) gid=1000(node) groups=...`.
  ids="$(docker run --rm --network none --entrypoint id "${agent_image}")"
  [[ "${ids}" =~ ^uid=([0-9]+).*\ gid=([0-9]+) ]] || {
    log "the agent image's user is unknown: ${ids}"
    return 1
  }
  agent_user="${BASH_REMATCH[1]}:${BASH_REMATCH[2]}"
  chown "${agent_user}" "${WORK_DIR}"
  passed=()
  for name in "${PASSED_TO_AGENT[@]}"; do
    if [[ -n "${!name:-}" ]]; then
      passed+=(--env "${name}")
    fi
  done
  log "starting the agent (${agent_image}) as ${agent_user}"
  # Host networking: the agent talks only to the metadata server and Google's APIs. It gets the group
  # that owns the Docker socket, and the shared folder at the same path as on the host, which is
  # where the task's container gets it from.
  # When the VM shuts down (a preemption: 30 s to power-off), the daemon stops the agent with SIGTERM
  # and gives it 28 s: enough to stop the task (15 s), upload the log and publish the completion.
  docker run --rm --name "${AGENT_NAME}" --network host --stop-timeout 28 \
    --group-add "${docker_group}" \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -v "${WORK_DIR}:${WORK_DIR}" \
    --env AGENT_SHARED_DIR="${WORK_DIR}" \
    "${passed[@]}" \
    "${agent_image}"
}

main "$@"
