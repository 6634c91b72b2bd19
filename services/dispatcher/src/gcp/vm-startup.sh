#!/bin/bash
# The start-up script of every pipeline VM (Container-Optimized OS), the same for every VM: it holds
# no task data and reads none. It runs the agent container, which reads the task (metadata key
# `pipeline-task`, JSON), runs the task's image through the Docker API, reports, and deletes the VM.
#
# Metadata it reads: `pipeline-agent-image` (the worker image, set by the launcher) and, when the VM
# has a GPU, `pipeline-gpu`. Whatever way this script ends (the image cannot be pulled, the agent
# cannot start, the agent crashed), the EXIT trap deletes the VM with its own service account, and
# powers it off if even that fails, so that nothing is left running until maxRunDuration.
set -euo pipefail

readonly METADATA_URL='http://metadata.google.internal/computeMetadata/v1'
readonly COMPUTE_URL='https://compute.googleapis.com/compute/v1'
readonly WORK_DIR='/tmp/worker'
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

# delete_self: the last resort. The token goes to curl on stdin, not on its command line.
delete_self() {
  local token project zone name
  token="$(metadata instance/service-accounts/default/token |
    sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')" || return 1
  project="$(metadata project/project-id)" || return 1
  zone="$(metadata instance/zone)" || return 1 # projects/NUMBER/zones/ZONE
  name="$(metadata instance/name)" || return 1
  printf 'Authorization: Bearer %s\n' "${token}" |
    curl --silent --show-error --fail --retry 5 --request DELETE --header @- \
      "${COMPUTE_URL}/projects/${project}/zones/${zone##*/}/instances/${name}"
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

pull() {
  local image=$1 registry=${1%%/*} try
  # Artifact Registry and Container Registry hosts need the VM's credentials; Docker Hub does not.
  case "${registry}" in
    *-docker.pkg.dev | *gcr.io)
      docker-credential-gcr configure-docker --registries="${registry}"
      ;;
    *) ;;
  esac
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
  local agent_image docker_group
  agent_image="$(metadata instance/attributes/pipeline-agent-image)"
  mkdir -p "${HOME}" "${WORK_DIR}"

  if [[ "$(metadata instance/attributes/pipeline-gpu 2>/dev/null || true)" == 'true' ]]; then
    log 'installing the GPU driver'
    cos-extensions install gpu
    # The driver's files must be executable from containers.
    mount --bind /var/lib/nvidia /var/lib/nvidia
    mount -o remount,exec /var/lib/nvidia
  fi

  wait_for_docker
  pull "${agent_image}"
  docker_group="$(stat -c '%g' /var/run/docker.sock)"
  log "starting the agent (${agent_image})"
  # The agent runs as a non-root user: give it the group that owns the Docker socket.
  docker run --rm --name pipeline-agent \
    --group-add "${docker_group}" \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -v "${WORK_DIR}:${WORK_DIR}" \
    "${agent_image}" agent
}

main "$@"
