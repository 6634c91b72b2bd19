// What the worker's Cloud Run job is defined with, read from text as terraform writes it (cpu "2",
// memory "4Gi", gpu "nvidia-l4", timeout "3600s"): by the dispatcher from WORKER_JOB_CPU, _MEMORY,
// _GPU and _TIMEOUT, and by `pipeline simulate --cloud-run-job`. One reader, so both accept and refuse
// the same; each caller names the fields as its user writes them.
import { formatDuration } from './format.ts';
import {
  CLOUD_RUN_CPU_STEPS,
  CLOUD_RUN_JOB_LIMITS,
  CLOUD_RUN_MEMORY_FOR_CPU,
  type CloudRunJobShape,
} from './platforms.ts';
import { parseBytes, parseDuration } from './units.ts';

export type CloudRunJobField = 'cpu' | 'memory' | 'gpu' | 'timeout';

export class CloudRunJobDefinitionError extends Error {
  override readonly name = 'CloudRunJobDefinitionError';
  readonly code = 'CLOUD_RUN_JOB_DEFINITION';
  /** The field at fault, as the caller named it. */
  readonly field: string;
  /** What is wrong with it, without its name. */
  readonly problem: string;
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}

const GIB = 1024 ** 3;

/** "512Mi", "16Gi": a size as Cloud Run (and terraform) write it. */
function asCloudRunWrites(bytes: number): string {
  return bytes < GIB ? `${bytes / 1024 ** 2}Mi` : `${bytes / GIB}Gi`;
}

/**
 * The definition from its fields' text: cpu and memory both or neither (neither: undefined, no
 * definition known); gpu and timeout only with them. `names` says how the caller's user writes each
 * field, for the errors.
 */
export function parseCloudRunJobDefinition(
  text: Partial<Record<CloudRunJobField, string>>,
  names: Record<CloudRunJobField, string>,
): CloudRunJobShape | undefined {
  const fail = (field: CloudRunJobField, problem: string) =>
    new CloudRunJobDefinitionError(names[field], problem);
  const { cpu: cpuText, memory: memoryText, gpu, timeout } = text;
  if (cpuText === undefined && memoryText === undefined) {
    for (const field of ['gpu', 'timeout'] as const)
      if (text[field] !== undefined) throw fail(field, `needs ${names.cpu} and ${names.memory}`);
    return undefined;
  }
  if (cpuText === undefined) throw fail('cpu', `is required with ${names.memory}`);
  if (memoryText === undefined) throw fail('memory', `is required with ${names.cpu}`);
  const cpu = Number(cpuText);
  if (!CLOUD_RUN_CPU_STEPS.includes(cpu))
    throw fail('cpu', `${JSON.stringify(cpuText)} is not 1, 2, 4, 6 or 8 (Cloud Run's vCPU steps)`);
  let memoryBytes: number;
  try {
    memoryBytes = parseBytes(memoryText, names.memory);
  } catch {
    throw fail('memory', `${JSON.stringify(memoryText)} is not a size like "4Gi"`);
  }
  const { minMemoryBytes, memoryBytes: maxMemoryBytes, gpuMinimum } = CLOUD_RUN_JOB_LIMITS;
  if (memoryBytes < minMemoryBytes || memoryBytes > maxMemoryBytes) {
    throw fail(
      'memory',
      `${memoryText} is not from ${asCloudRunWrites(minMemoryBytes)} to ${asCloudRunWrites(maxMemoryBytes)} (Cloud Run's limits)`,
    );
  }
  const least = Math.max(minMemoryBytes, CLOUD_RUN_MEMORY_FOR_CPU[cpu]!.minBytes);
  const most = CLOUD_RUN_MEMORY_FOR_CPU[cpu]!.maxBytes;
  if (memoryBytes < least || memoryBytes > most) {
    throw fail(
      'memory',
      `${memoryText} is not from ${asCloudRunWrites(least)} to ${asCloudRunWrites(most)}, ` +
        `what Cloud Run allows with ${cpu} vCPU (${names.cpu})`,
    );
  }
  if (gpu !== undefined && !CLOUD_RUN_JOB_LIMITS.gpuTypes.includes(gpu))
    throw fail('gpu', `${JSON.stringify(gpu)} is not ${CLOUD_RUN_JOB_LIMITS.gpuTypes.join(' or ')}`);
  if (gpu !== undefined && (cpu < gpuMinimum.cpu || memoryBytes < gpuMinimum.memoryBytes)) {
    throw fail(
      'gpu',
      `${gpu} needs at least ${gpuMinimum.cpu} vCPU and ${asCloudRunWrites(gpuMinimum.memoryBytes)} ` +
        `(${names.cpu} is ${cpuText}, ${names.memory} ${memoryText})`,
    );
  }
  let timeoutSeconds: number | undefined;
  if (timeout !== undefined) {
    try {
      timeoutSeconds = parseDuration(timeout, names.timeout);
    } catch {
      throw fail('timeout', `${JSON.stringify(timeout)} is not a duration like "3600s"`);
    }
    // Cloud Run's task timeout: 168 h, 1 h with a GPU (platforms.ts).
    const limit =
      gpu === undefined ? CLOUD_RUN_JOB_LIMITS.timeoutSeconds : CLOUD_RUN_JOB_LIMITS.gpuTimeoutSeconds;
    if (timeoutSeconds < 1) throw fail('timeout', `${timeout} is not at least 1s`);
    if (timeoutSeconds > limit) {
      const what = gpu === undefined ? 'a task' : 'a task with a GPU';
      throw fail('timeout', `${timeout} is beyond Cloud Run's ${formatDuration(limit)} for ${what}`);
    }
  }
  return {
    cpu,
    memoryBytes,
    ...(gpu === undefined ? {} : { accelerator: { type: gpu, count: 1 } }),
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
  };
}
