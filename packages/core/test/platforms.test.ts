// What each target can run (src/platforms.ts): the machine type a VM job gets.
import { describe, expect, it } from 'vitest';
import { machineTypeFor } from '../src/platforms.ts';
import type { Resources } from '../src/template.ts';

const GiB = 1024 ** 3;

describe('machineTypeFor', () => {
  it.each<[number, number, Resources['gpu'], string | undefined]>([
    [1, 0, undefined, 'e2-standard-2'],
    [2, 8 * GiB, undefined, 'e2-standard-2'],
    [3, 0, undefined, 'e2-standard-4'],
    [8, 20 * GiB, undefined, 'e2-standard-8'],
    [16, 0, undefined, 'e2-standard-16'],
    [32, 128 * GiB, undefined, 'e2-standard-32'],
    [2, 16 * GiB, undefined, 'n2-highmem-2'],
    [8, 64 * GiB, undefined, 'n2-highmem-8'],
    [40, 0, undefined, 'n2-standard-48'],
    [40, 300 * GiB, undefined, 'n2-highmem-48'],
    [80, 640 * GiB, undefined, 'n2-highmem-80'],
    [81, 0, undefined, undefined],
    [1, 700 * GiB, undefined, undefined],
    [1, 0, { type: 'nvidia-l4', count: 1 }, 'g2-standard-4'],
    [10, 0, { type: 'nvidia-l4', count: 1 }, 'g2-standard-12'],
    [1, 0, { type: 'nvidia-l4', count: 2 }, 'g2-standard-24'],
    [1, 0, { type: 'nvidia-l4', count: 8 }, 'g2-standard-96'],
    [1, 0, { type: 'nvidia-tesla-a100', count: 1 }, 'a2-highgpu-1g'],
    [30, 0, { type: 'nvidia-tesla-a100', count: 1 }, 'a2-highgpu-4g'],
    [1, 0, { type: 'nvidia-tesla-t4', count: 1 }, undefined],
  ])('%d vCPU, %d bytes, GPU %j: %s', (cpu, memory, gpu, name) => {
    expect(machineTypeFor(cpu, memory, gpu)?.name).toBe(name);
  });
});
