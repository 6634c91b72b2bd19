// What a region's Compute Engine quotas leave this deployment's VMs, from regions.get's `quotas`
// (https://cloud.google.com/compute/docs/reference/rest/v1/regions/get). Pure: the dispatcher's
// reader (services/dispatcher/src/gcp/region-quotas.ts) fetches, this computes.
//
// A quota's `usage` is the whole project's in the region: other deployments and hand-made VMs too.
// What this deployment may still hold is the limit less what others hold: limit - (usage - ours).
// `ours` comes from the capacity record, which can be ahead of Compute's count (a VM admitted a
// moment ago), so the others' part is never taken below 0, nor the result.
//
// Pools (https://cloud.google.com/compute/resource-usage, "Preemptible quotas"): once a region
// grants preemptible quota, spot and preemptible VMs count against PREEMPTIBLE_CPUS (and
// PREEMPTIBLE_<GPU>_GPUS) instead of the standard CPUS and <GPU>_GPUS; without it, or with a limit
// of 0, they count against the standard quotas like any VM. Each resource is decided on its own: a
// region may have preemptible GPU quota and no preemptible CPU quota.
//
// GPUs (same page, "GPU quota"): one regional quota per GPU model, metric NVIDIA_<MODEL>_GPUS,
// while instances name accelerator types like nvidia-tesla-t4
// (https://cloud.google.com/compute/docs/gpus): GPU_QUOTA_METRICS maps one to the other.
//
// Only CPUS is read for vCPUs. Some machine families (N2, C2, A2, G2, ...) have family quotas of
// their own (N2_CPUS, ...) besides; a VM refused by one of those still ends in QUOTA_EXCEEDED, after
// which the dispatcher reads the quotas again and waits.
import type { CapacityLimits } from './capacity.ts';

/** One entry of a Region's `quotas` (Compute sends the numbers as doubles). */
export interface RegionQuota {
  metric: string;
  limit: number;
  usage: number;
}

/** vCPUs and GPUs (by accelerator type, like nvidia-l4) held at once. */
export interface HeldResources {
  cpus: number;
  gpus?: Record<string, number>;
}

/** What this deployment's VMs hold now (launched or running), and the part of it on spot VMs. */
export interface OwnUsage extends HeldResources {
  spot?: HeldResources;
}

/** The VM fields of CapacityLimits, as the region's quotas set them. */
export type QuotaLimits = Pick<CapacityLimits, 'vmCpus' | 'vmCpuQuota' | 'gpus'>;

export interface RegionLimits extends QuotaLimits {
  /**
   * The resources that have a preemptible quota of their own: spot VMs count against these, and
   * not against the fields above. A resource absent here is one pool shared by spot and standard.
   */
  preemptible?: QuotaLimits;
}

/** Accelerator types (instances' acceleratorType) and their regional quota metrics. */
export const GPU_QUOTA_METRICS: Readonly<Record<string, string>> = {
  'nvidia-l4': 'NVIDIA_L4_GPUS',
  'nvidia-l4-vws': 'NVIDIA_L4_VWS_GPUS',
  'nvidia-tesla-t4': 'NVIDIA_T4_GPUS',
  'nvidia-tesla-t4-vws': 'NVIDIA_T4_VWS_GPUS',
  'nvidia-tesla-a100': 'NVIDIA_A100_GPUS',
  'nvidia-a100-80gb': 'NVIDIA_A100_80GB_GPUS',
  'nvidia-h100-80gb': 'NVIDIA_H100_GPUS',
  'nvidia-h100-mega-80gb': 'NVIDIA_H100_MEGA_GPUS',
  'nvidia-tesla-v100': 'NVIDIA_V100_GPUS',
  'nvidia-tesla-p100': 'NVIDIA_P100_GPUS',
  'nvidia-tesla-p100-vws': 'NVIDIA_P100_VWS_GPUS',
  'nvidia-tesla-p4': 'NVIDIA_P4_GPUS',
  'nvidia-tesla-p4-vws': 'NVIDIA_P4_VWS_GPUS',
  'nvidia-tesla-k80': 'NVIDIA_K80_GPUS',
};

const PREEMPTIBLE = 'PREEMPTIBLE_';

/** The quota metric of an accelerator type: from the table, else by the pattern most follow. */
export function gpuQuotaMetric(acceleratorType: string): string {
  const known = GPU_QUOTA_METRICS[acceleratorType];
  if (known !== undefined) return known;
  const model = acceleratorType
    .replace(/^nvidia-(tesla-)?/, '')
    .replace(/-/g, '_')
    .toUpperCase();
  return `NVIDIA_${model}_GPUS`;
}

/**
 * The limits the region's quotas set for this deployment's VMs. A resource whose quota the region
 * does not list is left out (unknown), not taken as 0.
 */
export function regionLimits(quotas: readonly RegionQuota[], ours: OwnUsage): RegionLimits {
  const byMetric = new Map(quotas.map((quota) => [quota.metric, quota]));
  const ownPool = (metric: string): RegionQuota | undefined => {
    const quota = byMetric.get(PREEMPTIBLE + metric);
    return quota !== undefined && quota.limit > 0 ? quota : undefined;
  };
  const standard: QuotaLimits = {};
  const preemptible: QuotaLimits = {};

  const cpus = byMetric.get('CPUS');
  const spotCpus = ownPool('CPUS');
  const oursSpotCpus = ours.spot?.cpus ?? 0;
  if (cpus !== undefined) {
    // With a pool of their own, our spot vCPUs are not in CPUS's usage, so not in ours either.
    const inPool = spotCpus === undefined ? ours.cpus : ours.cpus - oursSpotCpus;
    standard.vmCpus = headroom(cpus, inPool);
    standard.vmCpuQuota = cpus.limit;
  }
  if (spotCpus !== undefined) {
    preemptible.vmCpus = headroom(spotCpus, oursSpotCpus);
    preemptible.vmCpuQuota = spotCpus.limit;
  }

  const types = new Set([...Object.keys(GPU_QUOTA_METRICS), ...Object.keys(ours.gpus ?? {})]);
  for (const type of [...types].sort()) {
    const metric = gpuQuotaMetric(type);
    const quota = byMetric.get(metric);
    const spotQuota = ownPool(metric);
    const held = ours.gpus?.[type] ?? 0;
    const heldSpot = ours.spot?.gpus?.[type] ?? 0;
    if (quota !== undefined) {
      const inPool = spotQuota === undefined ? held : held - heldSpot;
      (standard.gpus ??= {})[type] = { limit: headroom(quota, inPool), quota: quota.limit };
    }
    if (spotQuota !== undefined) {
      (preemptible.gpus ??= {})[type] = { limit: headroom(spotQuota, heldSpot), quota: spotQuota.limit };
    }
  }
  return Object.keys(preemptible).length === 0 ? standard : { ...standard, preemptible };
}

/** limit - (usage - ours): what this deployment may hold of the quota, never below 0. */
function headroom(quota: RegionQuota, ours: number): number {
  const others = Math.max(0, quota.usage - Math.max(0, ours));
  return Math.max(0, Math.floor(quota.limit - others));
}
