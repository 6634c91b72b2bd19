// What the task's container is given besides its image, args and env: the shared folder, which the
// agent fills on the VM's disk and the task sees at /tmp/worker, and on a VM with GPUs what
// Container-Optimized OS documents for them
// (https://cloud.google.com/container-optimized-os/docs/how-to/run-gpus): the driver's libraries and
// tools, which `cos-extensions install gpu` puts under /var/lib/nvidia (the start-up script remounts
// it executable), mounted at /usr/local/nvidia, and the device files /dev/nvidia0..N-1,
// /dev/nvidia-uvm and /dev/nvidiactl. The libraries' folder goes first in LD_LIBRARY_PATH, before the
// image's own CUDA paths (docker.ts reads them from the image). Pure: decided here, run by docker.ts.
import type { VmTask } from '@pipeline/core/messages';

export const NVIDIA_HOST_DIR = '/var/lib/nvidia';
export const NVIDIA_CONTAINER_DIR = '/usr/local/nvidia';
/** Where the task finds the shared files (SHARED_URI), whatever folder of the VM holds them. */
export const TASK_SHARED_DIR = '/tmp/worker';

export interface TaskContainer {
  image: string;
  args: string[];
  env: Record<string, string>;
  binds: string[];
  devices: string[];
  /** Put first in LD_LIBRARY_PATH (the GPU driver's libraries); none without GPUs. */
  libraryPath?: string;
  /** For people on the VM (`docker ps --filter label=pipeline-job-id=...`) and for tests. */
  labels: Record<string, string>;
}

/** `sharedDir`: the VM's folder of the shared files, a path on the host (the Docker daemon's side). */
export function taskContainer(task: VmTask, sharedDir: string): TaskContainer {
  const container: TaskContainer = {
    image: task.image,
    args: task.args,
    env: task.env,
    binds: [`${sharedDir}:${TASK_SHARED_DIR}`],
    devices: [],
    labels: { 'pipeline-job-id': task.jobId, 'pipeline-attempt': String(task.attempt) },
  };
  const gpus = task.gpus ?? 0;
  if (gpus === 0) return container;
  return {
    ...container,
    binds: [
      ...container.binds,
      `${NVIDIA_HOST_DIR}/lib64:${NVIDIA_CONTAINER_DIR}/lib64:ro`,
      `${NVIDIA_HOST_DIR}/bin:${NVIDIA_CONTAINER_DIR}/bin:ro`,
    ],
    devices: [
      ...Array.from({ length: gpus }, (_, index) => `/dev/nvidia${index}`),
      '/dev/nvidia-uvm',
      '/dev/nvidiactl',
    ],
    libraryPath: `${NVIDIA_CONTAINER_DIR}/lib64`,
  };
}
