// What the task's container is given besides its image, args and env: the shared folder, and on a VM
// with GPUs what Container-Optimized OS documents for them
// (https://cloud.google.com/container-optimized-os/docs/how-to/run-gpus): the driver's libraries and
// tools, which `cos-extensions install gpu` puts under /var/lib/nvidia (the start-up script remounts
// it executable), mounted at /usr/local/nvidia, the device files /dev/nvidia0..N-1, /dev/nvidia-uvm
// and /dev/nvidiactl, and LD_LIBRARY_PATH so that CUDA finds libcuda. Pure: decided here, run by
// docker.ts.
import type { VmTask } from '@pipeline/core/messages';

export const NVIDIA_HOST_DIR = '/var/lib/nvidia';
export const NVIDIA_CONTAINER_DIR = '/usr/local/nvidia';

export interface TaskContainer {
  image: string;
  args: string[];
  env: Record<string, string>;
  binds: string[];
  devices: string[];
  /** For people on the VM (`docker ps --filter label=pipeline-job-id=...`) and for tests. */
  labels: Record<string, string>;
}

export function taskContainer(task: VmTask, sharedDir: string): TaskContainer {
  const binds = [`${sharedDir}:${sharedDir}`];
  const labels = { 'pipeline-job-id': task.jobId, 'pipeline-attempt': String(task.attempt) };
  const gpus = task.gpus ?? 0;
  if (gpus === 0) return { image: task.image, args: task.args, env: task.env, binds, devices: [], labels };
  const libraries = `${NVIDIA_CONTAINER_DIR}/lib64`;
  const own = task.env.LD_LIBRARY_PATH;
  return {
    image: task.image,
    args: task.args,
    // The driver's libraries first; a path the task sets itself is kept after them.
    env: {
      ...task.env,
      LD_LIBRARY_PATH: own === undefined || own === '' ? libraries : `${libraries}:${own}`,
    },
    binds: [
      ...binds,
      `${NVIDIA_HOST_DIR}/lib64:${libraries}:ro`,
      `${NVIDIA_HOST_DIR}/bin:${NVIDIA_CONTAINER_DIR}/bin:ro`,
    ],
    devices: [
      ...Array.from({ length: gpus }, (_, index) => `/dev/nvidia${index}`),
      '/dev/nvidia-uvm',
      '/dev/nvidiactl',
    ],
    labels,
  };
}
