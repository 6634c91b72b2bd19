// What each target can run: Cloud Run Jobs' hard limits and the cpu/memory shapes it accepts,
// and the Compute Engine machine types the router picks from for a VM.

import { formatBytes, formatDuration } from './format.ts';
import type { Accelerator, JobTemplate } from './template.ts';

const GIB = 1024 ** 3;
const HOUR = 3600;

/**
 * Cloud Run Jobs' per-task limits; a job beyond any of them runs on a VM instead.
 * https://cloud.google.com/run/docs/configuring/jobs/cpu (at most 8 vCPU),
 * https://cloud.google.com/run/docs/configuring/jobs/memory-limits (at most 32 GiB),
 * https://cloud.google.com/run/docs/configuring/task-timeout (168 h; 1 h for tasks with a GPU; a
 * newer version of that page offers GPU tasks up to 12 h as a Preview, "Long running GPU jobs", under
 * the Pre-GA terms and with GPU tasks ended by maintenance rather than migrated: the GA 1 h is kept),
 * https://cloud.google.com/run/docs/configuring/jobs/gpu (one NVIDIA L4 per instance).
 */
export const CLOUD_RUN_JOB_LIMITS = {
  cpu: 8,
  memoryBytes: 32 * GIB,
  timeoutSeconds: 168 * HOUR,
  gpuTimeoutSeconds: 1 * HOUR,
  gpuTypes: ['nvidia-l4'] as readonly string[],
  maxGpuCount: 1,
  /** "For L4 GPUs, you must use a minimum of 4 CPU and 16 GiB of memory" (jobs/gpu, above). */
  gpuMinimum: { cpu: 4, memoryBytes: 16 * GIB },
  /** The least memory in the second generation environment jobs run in (jobs/memory-limits). */
  minMemoryBytes: 512 * 1024 ** 2,
  /** Tasks in one execution ("Maximum number of tasks in a single job": https://cloud.google.com/run/quotas). */
  maxTasks: 10_000,
};

/** Used when neither the template nor the request says: Cloud Run's 1 vCPU, and room for pandas. */
export const CLOUD_RUN_DEFAULTS = { cpu: 1, memoryBytes: 2 * GIB };

/**
 * Why `job` can't run as a Cloud Run Job, one phrase per broken limit; empty when it can. With
 * `defined`, the Cloud Run job it would run in: a task gets that job's GPU whether it asks for one or
 * not (RunJob can't override resources), and with it the GPU's task timeout.
 */
export function cloudRunLimitBreaches(job: JobTemplate, defined?: CloudRunJobShape): string[] {
  const limits = CLOUD_RUN_JOB_LIMITS;
  const breaches: string[] = [];
  if (job.cpu !== undefined && job.cpu > limits.cpu) {
    breaches.push(`${job.cpu} vCPU (Cloud Run Jobs allow ${limits.cpu})`);
  }
  if (job.memoryBytes !== undefined && job.memoryBytes > limits.memoryBytes) {
    breaches.push(
      `${formatBytes(job.memoryBytes)} memory (Cloud Run Jobs allow ${formatBytes(limits.memoryBytes)})`,
    );
  }
  if (job.timeoutSeconds !== undefined && job.timeoutSeconds > limits.timeoutSeconds) {
    breaches.push(
      `${formatDuration(job.timeoutSeconds)} (Cloud Run Jobs allow ${formatDuration(limits.timeoutSeconds)})`,
    );
  }
  const gpu = job.accelerator;
  if (gpu && !limits.gpuTypes.includes(gpu.type)) {
    breaches.push(`a ${gpu.type} GPU (Cloud Run Jobs offer only ${limits.gpuTypes.join(', ')})`);
  }
  if (gpu && gpu.count > limits.maxGpuCount) {
    breaches.push(`${gpu.count} GPUs (Cloud Run Jobs allow ${limits.maxGpuCount})`);
  }
  const timeout = job.timeoutSeconds;
  const gpuLimited =
    timeout !== undefined && timeout > limits.gpuTimeoutSeconds && timeout <= limits.timeoutSeconds;
  const gpuLimit = formatDuration(limits.gpuTimeoutSeconds);
  if (gpuLimited && gpu) {
    breaches.push(`${formatDuration(timeout)} with a GPU (Cloud Run Jobs allow ${gpuLimit})`);
  } else if (gpuLimited && defined?.accelerator) {
    breaches.push(
      `${formatDuration(timeout)} (the Cloud Run job has a GPU, and Cloud Run Jobs allow ${gpuLimit} with one)`,
    );
  }
  return breaches;
}

/** Cloud Run accepts 1, 2, 4, 6 or 8 vCPU, each with a memory range (jobs/cpu page above). */
export const CLOUD_RUN_CPU_STEPS: readonly number[] = [1, 2, 4, 6, 8];

/**
 * The memory a Cloud Run task may have with each vCPU step, above the floor every job has
 * (`minMemoryBytes`): https://cloud.google.com/run/docs/configuring/jobs/cpu, "vCPU and memory table".
 */
export const CLOUD_RUN_MEMORY_FOR_CPU: Readonly<Record<number, { minBytes: number; maxBytes: number }>> = {
  1: { minBytes: 0, maxBytes: 4 * GIB },
  2: { minBytes: 0, maxBytes: 8 * GIB },
  4: { minBytes: 2 * GIB, maxBytes: 16 * GIB },
  6: { minBytes: 4 * GIB, maxBytes: 24 * GIB },
  8: { minBytes: 4 * GIB, maxBytes: 32 * GIB },
};

/**
 * The smallest shape Cloud Run accepts that holds `job` (which must be within the limits):
 * defaults filled in, cpu rounded up to a step, and each raised to what the other requires
 * (more than 4/8/16/24 GiB needs 2/4/6/8 vCPU; 4 vCPU needs 2 GiB, 6 or 8 need 4 GiB; an L4
 * needs 4 vCPU and 16 GiB). Without this the Run API would refuse the execution.
 */
export function shapeForCloudRun(job: JobTemplate): JobTemplate {
  let cpu = job.cpu ?? CLOUD_RUN_DEFAULTS.cpu;
  let memory = job.memoryBytes ?? CLOUD_RUN_DEFAULTS.memoryBytes;
  if (job.accelerator) {
    cpu = Math.max(cpu, CLOUD_RUN_JOB_LIMITS.gpuMinimum.cpu);
    memory = Math.max(memory, CLOUD_RUN_JOB_LIMITS.gpuMinimum.memoryBytes);
  }
  const limit = CLOUD_RUN_JOB_LIMITS.cpu;
  const cpuForMemory =
    CLOUD_RUN_CPU_STEPS.find((step) => CLOUD_RUN_MEMORY_FOR_CPU[step]!.maxBytes >= memory) ?? limit;
  cpu = CLOUD_RUN_CPU_STEPS.find((step) => step >= Math.max(cpu, cpuForMemory)) ?? limit;
  return { ...job, cpu, memoryBytes: Math.max(memory, CLOUD_RUN_MEMORY_FOR_CPU[cpu]!.minBytes) };
}

/**
 * What the worker's Cloud Run job is defined with (terraform: its container's cpu and memory limits,
 * and a GPU when it has one). RunJob's Overrides hold containerOverrides (name, args, env, clearArgs),
 * taskCount and timeout, nothing of resources
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs/run, and the client's
 * google.cloud.run.v2.RunJobRequest.Overrides), so every task runs, and is billed, with these,
 * whatever its job asks for.
 */
export interface CloudRunJobShape {
  cpu: number;
  memoryBytes: number;
  accelerator?: Accelerator;
  /**
   * Its task timeout (terraform's worker_timeout_seconds, 1 h by default). An execution may override
   * it, and the launcher does for a job with a timeout of its own; one without runs with this.
   */
  timeoutSeconds?: number;
}

/**
 * The task timeout `job` runs with on Cloud Run: its own, else the Cloud Run job's definition's,
 * else Cloud Run's limit (168 h; 1 h with a GPU, the job's or the definition's).
 */
export function cloudRunTaskTimeout(job: JobTemplate, defined?: CloudRunJobShape): number {
  if (job.timeoutSeconds !== undefined) return job.timeoutSeconds;
  if (defined?.timeoutSeconds !== undefined) return defined.timeoutSeconds;
  const gpu = job.accelerator ?? defined?.accelerator;
  return gpu === undefined ? CLOUD_RUN_JOB_LIMITS.timeoutSeconds : CLOUD_RUN_JOB_LIMITS.gpuTimeoutSeconds;
}

/**
 * Why `job` can't run in a Cloud Run job defined as `defined`, one phrase per resource it lacks:
 * "4 vCPU (the Cloud Run job has 2)". Empty when it fits. `job` is shaped first, as Cloud Run would
 * need it (an L4 needs 4 vCPU and 16 GiB).
 */
export function cloudRunShapeBreaches(job: JobTemplate, defined: CloudRunJobShape): string[] {
  const shaped = shapeForCloudRun(job);
  const breaches: string[] = [];
  if (shaped.cpu! > defined.cpu) breaches.push(`${shaped.cpu} vCPU (the Cloud Run job has ${defined.cpu})`);
  if (shaped.memoryBytes! > defined.memoryBytes) {
    breaches.push(
      `${formatBytes(shaped.memoryBytes!)} memory (the Cloud Run job has ${formatBytes(defined.memoryBytes)})`,
    );
  }
  const [wanted, has] = [job.accelerator, defined.accelerator];
  if (wanted && (has === undefined || has.type !== wanted.type || has.count < wanted.count)) {
    const what = has === undefined ? 'no GPU' : `${has.count} ${has.type}`;
    breaches.push(`${wanted.count} ${wanted.type} (the Cloud Run job has ${what})`);
  }
  return breaches;
}

/** `job` as it runs in the Cloud Run job defined as `defined`: with the job's cpu, memory and GPU. */
export function onDefinedCloudRunJob(job: JobTemplate, defined: CloudRunJobShape): JobTemplate {
  const { accelerator: _accelerator, ...rest } = job;
  return {
    ...rest,
    cpu: defined.cpu,
    memoryBytes: defined.memoryBytes,
    ...(defined.accelerator === undefined ? {} : { accelerator: { ...defined.accelerator } }),
  };
}

export interface MachineType {
  name: string;
  cpu: number;
  memoryBytes: number;
  /** GPUs that come with the machine type (G2 and A2 attach them by themselves). */
  gpu?: Accelerator;
}

/**
 * Approximate us-central1 on-demand prices (USD per hour), used only to rank machine types
 * that fit: cheapest first. This is why e2 wins until its 32 vCPU / 128 GiB run out or memory
 * per vCPU is high, then n2-highmem, with n2-standard for many vCPU and little memory.
 */
const HOURLY_USD = {
  e2: { cpu: 0.021811, gib: 0.002923, gpu: 0 },
  n2: { cpu: 0.031611, gib: 0.004237, gpu: 0 },
  g2: { cpu: 0.024736, gib: 0.002894, gpu: 0.559705 },
  a2: { cpu: 0.031611, gib: 0.004237, gpu: 2.933908 },
};

function family(prefix: string, sizes: number[], gibPerCpu: number): MachineType[] {
  return sizes.map((cpu) => ({ name: `${prefix}-${cpu}`, cpu, memoryBytes: cpu * gibPerCpu * GIB }));
}

/** The machine types a VM job may get when its rule names none. */
export const MACHINE_TYPES: readonly MachineType[] = [
  ...family('e2-standard', [2, 4, 8, 16, 32], 4),
  ...family('n2-highmem', [2, 4, 8, 16, 32, 48, 64, 80], 8),
  ...family('n2-standard', [48, 64, 80], 4),
  // G2: 4 GiB per vCPU and 1, 2, 4 or 8 NVIDIA L4s.
  ...(
    [
      [4, 1],
      [8, 1],
      [12, 1],
      [16, 1],
      [24, 2],
      [32, 1],
      [48, 4],
      [96, 8],
    ] as const
  ).map(([cpu, gpus]) => ({
    name: `g2-standard-${cpu}`,
    cpu,
    memoryBytes: cpu * 4 * GIB,
    gpu: { type: 'nvidia-l4', count: gpus },
  })),
  // A2 high-GPU: 12 vCPU and 85 GiB per NVIDIA A100 (40 GB).
  ...[1, 2, 4, 8].map((gpus) => ({
    name: `a2-highgpu-${gpus}g`,
    cpu: 12 * gpus,
    memoryBytes: 85 * gpus * GIB,
    gpu: { type: 'nvidia-tesla-a100', count: gpus },
  })),
];

/**
 * Whether a machine type is accelerator-optimized, its GPUs attached by the type itself: "For VMs
 * that use accelerator-optimized machine types, the GPUs are automatically attached"
 * (https://cloud.google.com/compute/docs/gpus/about-gpus). An instance of any other type names its
 * GPUs in guestAccelerators.
 */
export function hasBuiltInGpus(machineType: string): boolean {
  return /^(a2|a3|a4|g2|g4)-/.test(machineType);
}

function hourlyUsd(machine: MachineType): number {
  const rates = HOURLY_USD[machine.name.slice(0, 2) as keyof typeof HOURLY_USD];
  return (
    machine.cpu * rates.cpu + (machine.memoryBytes / GIB) * rates.gib + (machine.gpu?.count ?? 0) * rates.gpu
  );
}

/** Whether `machine` holds the needs; GPU machines only serve jobs that ask for their GPU. */
export function machineFits(
  machine: MachineType,
  cpu: number,
  memoryBytes: number,
  accelerator?: Accelerator,
) {
  const gpuFits = accelerator
    ? machine.gpu?.type === accelerator.type && machine.gpu.count >= accelerator.count
    : machine.gpu === undefined;
  return gpuFits && machine.cpu >= cpu && machine.memoryBytes >= memoryBytes;
}

/** The cheapest-looking machine type that fits, or undefined when none does. */
export function machineTypeFor(
  cpu: number,
  memoryBytes: number,
  accelerator?: Accelerator,
): MachineType | undefined {
  const fitting = MACHINE_TYPES.filter((machine) => machineFits(machine, cpu, memoryBytes, accelerator));
  return fitting.sort((a, b) => hourlyUsd(a) - hourlyUsd(b))[0];
}
