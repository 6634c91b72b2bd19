import { describe, expect, it } from 'vitest';
import {
  gpuQuotaMetric,
  regionLimits,
  type OwnUsage,
  type RegionLimits,
  type RegionQuota,
} from '../src/index.ts';

const q = (metric: string, limit: number, usage: number): RegionQuota => ({ metric, limit, usage });
const NONE: OwnUsage = { cpus: 0 };

describe('regionLimits', () => {
  it.each<[string, RegionQuota[], OwnUsage, RegionLimits]>([
    ['nobody else: the whole quota', [q('CPUS', 24, 0)], NONE, { vmCpus: 24, vmCpuQuota: 24 }],
    ['others hold some', [q('CPUS', 24, 10)], NONE, { vmCpus: 14, vmCpuQuota: 24 }],
    [
      'ours are part of usage: they count as ours',
      [q('CPUS', 24, 10)],
      { cpus: 8 },
      { vmCpus: 22, vmCpuQuota: 24 },
    ],
    [
      'ours ahead of Compute (just admitted)',
      [q('CPUS', 24, 4)],
      { cpus: 8 },
      { vmCpus: 24, vmCpuQuota: 24 },
    ],
    ['others over the limit: 0, not negative', [q('CPUS', 24, 30)], NONE, { vmCpus: 0, vmCpuQuota: 24 }],
    ['no CPUS listed: unknown, not 0', [q('INSTANCES', 100, 1)], NONE, {}],
    [
      'spot with PREEMPTIBLE_CPUS granted: a pool of its own',
      [q('CPUS', 24, 10), q('PREEMPTIBLE_CPUS', 64, 16)],
      { cpus: 12, spot: { cpus: 8 } },
      { vmCpus: 18, vmCpuQuota: 24, preemptible: { vmCpus: 56, vmCpuQuota: 64 } },
    ],
    [
      'PREEMPTIBLE_CPUS of 0: spot VMs count against CPUS',
      [q('CPUS', 24, 12), q('PREEMPTIBLE_CPUS', 0, 0)],
      { cpus: 12, spot: { cpus: 8 } },
      { vmCpus: 24, vmCpuQuota: 24 },
    ],
    [
      'GPUs by accelerator type, from their metrics',
      [q('CPUS', 96, 0), q('NVIDIA_L4_GPUS', 8, 3), q('NVIDIA_T4_GPUS', 4, 0), q('NVIDIA_A100_GPUS', 0, 0)],
      { cpus: 8, gpus: { 'nvidia-l4': 1 } },
      {
        vmCpus: 96,
        vmCpuQuota: 96,
        gpus: {
          'nvidia-l4': { limit: 6, quota: 8 },
          'nvidia-tesla-t4': { limit: 4, quota: 4 },
          'nvidia-tesla-a100': { limit: 0, quota: 0 },
        },
      },
    ],
    [
      'preemptible GPU quota without preemptible CPU quota',
      [q('CPUS', 48, 16), q('NVIDIA_L4_GPUS', 2, 1), q('PREEMPTIBLE_NVIDIA_L4_GPUS', 16, 2)],
      { cpus: 16, gpus: { 'nvidia-l4': 3 }, spot: { cpus: 8, gpus: { 'nvidia-l4': 2 } } },
      {
        vmCpus: 48,
        vmCpuQuota: 48,
        gpus: { 'nvidia-l4': { limit: 2, quota: 2 } },
        preemptible: { gpus: { 'nvidia-l4': { limit: 16, quota: 16 } } },
      },
    ],
    [
      'an accelerator type not in the table, by the pattern',
      [q('NVIDIA_B200_GPUS', 8, 0)],
      { cpus: 0, gpus: { 'nvidia-b200': 0 } },
      { gpus: { 'nvidia-b200': { limit: 8, quota: 8 } } },
    ],
  ])('%s', (_name, quotas, ours, expected) => {
    expect(regionLimits(quotas, ours)).toEqual(expected);
  });
});

describe('gpuQuotaMetric', () => {
  it.each([
    ['nvidia-l4', 'NVIDIA_L4_GPUS'],
    ['nvidia-tesla-t4', 'NVIDIA_T4_GPUS'],
    ['nvidia-tesla-a100', 'NVIDIA_A100_GPUS'],
    ['nvidia-a100-80gb', 'NVIDIA_A100_80GB_GPUS'],
    ['nvidia-h100-80gb', 'NVIDIA_H100_GPUS'],
    ['nvidia-tesla-v100', 'NVIDIA_V100_GPUS'],
    ['nvidia-tesla-p4-vws', 'NVIDIA_P4_VWS_GPUS'],
    ['nvidia-rtx-pro-6000', 'NVIDIA_RTX_PRO_6000_GPUS'],
  ])('%s counts against %s', (type, metric) => {
    expect(gpuQuotaMetric(type)).toBe(metric);
  });
});
