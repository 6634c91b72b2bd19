// The limits of the launch queue on Google Cloud: Cloud Run's (RUN_MAX_EXECUTIONS, below the hard
// 1,000 running executions per project and region; RUN_JOBS_PER_MINUTE, the "Job run requests per
// minute per region" quota) from the configuration, and the VMs' from the region's Compute quotas
// (regions.get, kept five minutes, read again after a QUOTA_EXCEEDED), capped by VM_MAX_VCPUS.
//
// Spot VMs are counted in the same vCPU and GPU pools as standard ones, even where the region has
// preemptible quotas of their own: that can only make the queue wait sooner than Compute would, and
// a refusal from Compute still teaches the queue the rest.
import type { CapacityLimits, SlotHolder } from '@pipeline/core';
import type { CapacitySource } from '../launch-queue.ts';
import type { CloudConfig } from '../config.ts';
import type { RegionQuotaReader } from './region-quotas.ts';

export function cloudCapacity(
  config: Pick<CloudConfig, 'region' | 'capacity'> & { vm: Pick<CloudConfig['vm'], 'machineType'> },
  quotas?: Pick<RegionQuotaReader, 'limits' | 'refresh'>,
): CapacitySource {
  const { runExecutions, runJobsPerMinute, vmCpus } = config.capacity;
  const configured: CapacityLimits = {
    region: config.region,
    runExecutions,
    runJobsPerMinute,
    ...(vmCpus === undefined ? {} : { vmCpus, vmCpuQuota: vmCpus }),
  };
  return {
    defaultMachineType: config.vm.machineType,
    quotaRefused: () => void quotas?.refresh(),
    async limits(held: readonly SlotHolder[]): Promise<CapacityLimits> {
      if (quotas === undefined) return configured;
      const ours = { cpus: 0, gpus: {} as Record<string, number> };
      for (const holder of held) {
        if (holder.target !== 'vm') continue;
        ours.cpus += holder.cpus;
        if (holder.gpus !== undefined)
          ours.gpus[holder.gpus.type] = (ours.gpus[holder.gpus.type] ?? 0) + holder.gpus.count;
      }
      const read = await quotas.limits(ours);
      if (read.kind === 'unknown') return { ...configured, notes: [`VM quotas unknown: ${read.reason}`] };
      const { limits } = read;
      const min = (a: number | undefined, b: number | undefined) =>
        a === undefined ? b : b === undefined ? a : Math.min(a, b);
      const cpus = min(limits.vmCpus, vmCpus);
      const cpuQuota = min(limits.vmCpuQuota, vmCpus);
      return {
        ...configured,
        ...(cpus === undefined ? {} : { vmCpus: cpus }),
        ...(cpuQuota === undefined ? {} : { vmCpuQuota: cpuQuota }),
        ...(limits.gpus === undefined ? {} : { gpus: limits.gpus }),
      };
    },
  };
}
