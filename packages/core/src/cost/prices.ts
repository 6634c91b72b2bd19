// What a run costs on each platform, before it starts: the price table (defaults for us-central1, in
// USD, each figure with where it was read), strict overrides from config, and runCost, which applies
// each platform's billing rules (Cloud Run: per 100 ms; Compute Engine: per second, one-minute minimum)
// to a shape and a duration, start-up overhead and the expected rework of spot preemptions included.

import { MACHINE_TYPES } from '../platforms.ts';
import type { Accelerator, Target } from '../template.ts';
import { formatBytes, formatUsd } from '../format.ts';
import { quote } from '../units.ts';

const GIB = 1024 ** 3;
const HOURS_PER_MONTH = 730; // Google's pricing calculator turns monthly disk prices into hours with this
const VM_MINIMUM_BILLED_SECONDS = 60;
const CLOUD_RUN_STEPS_PER_SECOND = 10; // billed in 100 ms steps

/** USD per hour of one resource, standard (on-demand) and spot. */
export interface HourlyPrice {
  onDemand: number;
  spot: number;
}

/** Start-up of a platform: what the task waits for, and what of that (plus teardown) is billed. */
export interface StartupOverhead {
  waitedSeconds: number;
  billedSeconds: number;
}

export interface PriceTable {
  region: string;
  cloudRun: {
    /** USD per vCPU-second and per GiB-second of a job's task (instance-based billing). */
    vcpuSecond: number;
    gibSecond: number;
    /** USD per GPU-second, by GPU type. */
    gpuSecond: Record<string, number>;
  };
  /** The vCPU and memory of each machine type; GPUs, bundled (G2, A2) or attached, are `accelerators`. */
  machineTypes: Record<string, HourlyPrice>;
  /** USD per GPU-hour, by accelerator type. */
  accelerators: Record<string, HourlyPrice>;
  /** The VM's boot disk: size and USD per GiB-month (prorated per second). */
  bootDisk: { gib: number; gibMonth: number };
  /** Expected preemptions of one spot VM per hour of uptime (an assumption: Google publishes none). */
  spotPreemptionsPerHour: number;
  startup: Record<Target, StartupOverhead>;
}

/**
 * Per vCPU-hour and GiB-hour, on-demand and spot. Read 2026-11-22.
 * On-demand E2 and N2: https://cloud.google.com/compute/vm-instance-pricing (us-central1).
 * Spot prices change up to once a day (https://cloud.google.com/spot-vms/pricing); those below, and
 * the G2 and A2 figures, are Google's Cloud Billing Catalog prices as exported to
 * https://github.com/skypilot-org/skypilot-catalog/blob/006059e0f18acb1341e22a27751e9f80df6ba92f/catalogs/v8/gcp/vms.csv
 * (us-central1 rows), because the tables of Google's pages were not readable from here. Each rate pair
 * reproduces the catalog's price of each machine type of the family to within $0.0001 an hour.
 * G2 sells 4 GiB with each vCPU, so its figure is per vCPU, memory included. A2's on-demand rates
 * are N2's (they give the catalog's A2 prices), and its spot price is half that for every A2 type.
 */
const FAMILY_RATES: Record<string, { onDemand: [number, number]; spot: [number, number] }> = {
  e2: { onDemand: [0.021811, 0.002923], spot: [0.009569, 0.001282] },
  n2: { onDemand: [0.031611, 0.004237], spot: [0.01034, 0.001384] },
  g2: { onDemand: [0.0366975, 0], spot: [0.014685, 0] },
  a2: { onDemand: [0.031611, 0.004237], spot: [0.0158055, 0.0021185] },
};

function machinePrices(): Record<string, HourlyPrice> {
  const prices: Record<string, HourlyPrice> = {};
  for (const machine of MACHINE_TYPES) {
    const rates = FAMILY_RATES[machine.name.slice(0, 2)];
    const gib = machine.memoryBytes / GIB;
    const at = ([cpu, memory]: [number, number]) => round6(machine.cpu * cpu + gib * memory);
    prices[machine.name] = { onDemand: at(rates.onDemand), spot: at(rates.spot) };
  }
  return prices;
}

/**
 * us-central1 prices and our start-up assumptions. Cloud Run figures read 2026-11-22 from
 * https://cloud.google.com/run/pricing (Tier 1, "Jobs": $0.000018 per vCPU-second, $0.000002 per
 * GiB-second, billed in 100 ms steps; NVIDIA L4 without zonal redundancy, which is how jobs are billed
 * per https://cloud.google.com/run/docs/configuring/jobs/gpu, $0.0001867 per GPU-second). The free
 * tier is left out: it is per billing account and month, and the pipeline can't know what is left.
 */
export const DEFAULT_PRICES: PriceTable = {
  region: 'us-central1',
  cloudRun: { vcpuSecond: 0.000018, gibSecond: 0.000002, gpuSecond: { 'nvidia-l4': 0.0001867 } },
  machineTypes: machinePrices(),
  // Per GPU-hour, us-central1, from the same catalog export (its accelerator rows), read 2026-11-22.
  // The T4 is attached to N1 machine types, which have no default price: add yours to use it.
  accelerators: {
    'nvidia-l4': { onDemand: 0.56004, spot: 0.2231 },
    'nvidia-tesla-a100': { onDemand: 2.93391, spot: 1.4341 },
    'nvidia-tesla-t4': { onDemand: 0.35, spot: 0.175 },
  },
  // pd-standard, $0.04 per GiB-month ("a 200 GB standard Persistent Disk volume would cost $8.00 for
  // the whole month", https://cloud.google.com/compute/disks-image-pricing, read 2026-11-22); 10 GiB is
  // the size of the Container-Optimized OS image the launcher boots when it is given no disk size.
  bootDisk: { gib: 10, gibMonth: 0.04 },
  // An assumption, to be replaced by what the ledger's preempted attempts show: about one preemption
  // per two days of uptime, so a 24 h run is hit with a chance of 1 - e^-0.48 = 38%.
  spotPreemptionsPerHour: 0.02,
  startup: {
    // runJob to the worker's first line: scheduling and pulling the (cached) image, about 15 s, are
    // waited; billing counts the instance from its start, so we assume only the last ~5 s are billed.
    'cloud-run-job': { waitedSeconds: 15, billedSeconds: 5 },
    // insert to the agent running the task: ~10 s provisioning (not billed: uptime counts from
    // RUNNING), ~30 s boot and ~50 s docker pull (billed); after the task, ~20 s upload and delete
    // (billed, not waited: the outputs are complete before it).
    vm: { waitedSeconds: 90, billedSeconds: 100 },
  },
};

export class PriceTableError extends Error {
  override readonly name = 'PriceTableError';
  readonly code = 'PRICE_TABLE';
  readonly field: string;
  readonly detail: string;

  constructor(field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.field = field;
    this.detail = detail;
  }
}

/** What a run is given: a Cloud Run shape, or a VM's machine type (cpu and memory are the job's). */
export interface RunShape {
  target: Target;
  cpu: number;
  memoryBytes: number;
  machineType?: string;
  spot: boolean;
  accelerator?: Accelerator;
}

export interface RunCost {
  /** Expected USD: for spot, including the runs lost to preemptions. */
  usd: number;
  billedSeconds: number;
  /** From launch to the result: start-up plus the run (and, on spot, expected restarts). */
  waitedSeconds: number;
  /** The arithmetic, for a reason or a plan. */
  detail: string;
}

/** The cost of running `seconds` of work on `shape`, by the platform's billing rules. */
export function runCost(prices: PriceTable, shape: RunShape, seconds: number): RunCost {
  if (!(seconds >= 0)) throw new RangeError(`runCost: seconds must be 0 or more, got ${seconds}`);
  return shape.target === 'cloud-run-job'
    ? cloudRunCost(prices, shape, seconds)
    : vmCost(prices, shape, seconds);
}

function cloudRunCost(prices: PriceTable, shape: RunShape, seconds: number): RunCost {
  const { cloudRun, startup } = prices;
  const gpu = shape.accelerator;
  let perSecond = shape.cpu * cloudRun.vcpuSecond + (shape.memoryBytes / GIB) * cloudRun.gibSecond;
  if (gpu) {
    const price = cloudRun.gpuSecond[gpu.type];
    if (price === undefined) throw new Error(`runCost: Cloud Run has no price for a ${gpu.type} GPU`);
    perSecond += gpu.count * price;
  }
  const overhead = startup['cloud-run-job'];
  // Round up to the 100 ms step; the epsilon keeps 17.3 s from becoming 17.4 s through float noise.
  const steps = CLOUD_RUN_STEPS_PER_SECOND;
  const billed = Math.ceil((seconds + overhead.billedSeconds) * steps - 1e-6) / steps;
  const usd = billed * perSecond;
  const what = `${shape.cpu} vCPU, ${formatBytes(shape.memoryBytes)}${gpu ? `, ${gpu.count} ${gpu.type}` : ''}`;
  return {
    usd,
    billedSeconds: billed,
    waitedSeconds: seconds + overhead.waitedSeconds,
    detail:
      `cloud-run-job ${what}: ${round1(seconds)} s run + ${overhead.billedSeconds} s start-up = ` +
      `${billed} s billed in 100 ms steps x $${round6(perSecond * 3600)}/h = ${formatUsd(usd)}`,
  };
}

function vmCost(prices: PriceTable, shape: RunShape, seconds: number): RunCost {
  const name = shape.machineType;
  if (name === undefined) throw new Error('runCost: a vm shape needs its machineType');
  const machine = prices.machineTypes[name];
  if (machine === undefined)
    throw new Error(`runCost: machine type ${quote(name)} has no price in the table`);
  const pick = (price: HourlyPrice) => (shape.spot ? price.spot : price.onDemand);
  let hourly = pick(machine);
  const gpu = shape.accelerator;
  if (gpu) {
    const price = prices.accelerators[gpu.type];
    if (price === undefined)
      throw new Error(`runCost: accelerator ${quote(gpu.type)} has no price in the table`);
    hourly += gpu.count * pick(price);
  }
  hourly += (prices.bootDisk.gib * prices.bootDisk.gibMonth) / HOURS_PER_MONTH;
  const overhead = prices.startup.vm;
  const attempt = seconds + overhead.billedSeconds;
  const rate = shape.spot ? prices.spotPreemptionsPerHour / 3600 : 0;
  // Per second after the first minute; the epsilon keeps 61 s from becoming 62 s through float noise.
  const billed = Math.max(VM_MINIMUM_BILLED_SECONDS, Math.ceil(withRestarts(attempt, rate) - 1e-9));
  const usd = (billed * hourly) / 3600;
  const factor = withRestarts(attempt, rate) / attempt;
  const rework = factor > 1.0005 ? `, x${factor.toFixed(3)} for expected preemptions` : '';
  return {
    usd,
    billedSeconds: billed,
    waitedSeconds: withRestarts(seconds + overhead.waitedSeconds, rate),
    detail:
      `vm ${name} ${shape.spot ? 'spot' : 'standard'} at $${round6(hourly)}/h with its disk: ` +
      `${round1(seconds)} s run + ${overhead.billedSeconds} s start-up${rework} = ${billed} s billed ` +
      `(per second, at least 60) = ${formatUsd(usd)}`,
  };
}

/**
 * The expected time to finish `seconds` of work that restarts from scratch after each preemption,
 * with preemptions a Poisson process of `rate` per second: (e^(rate x seconds) - 1) / rate. The
 * rework grows faster than the run: +1% for 1 h at 0.02/h, +11% for 10 h, +28% for 24 h. It ignores
 * the retry policy's move to standard VMs after some preemptions, so long runs are priced high.
 */
function withRestarts(seconds: number, rate: number): number {
  return rate > 0 ? Math.expm1(rate * seconds) / rate : seconds;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
