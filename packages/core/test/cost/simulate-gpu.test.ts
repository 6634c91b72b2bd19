// GPU work in the simulator: a task's or its rule's accelerator goes with its job, so it is priced
// with the router's tables (Cloud Run's L4 per second, g2 machine types with their L4s) and held to
// Cloud Run's GPU limits (one L4, at most 1 h).
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, runCost } from '../../src/index.ts';
import { CLOUD_RUN_JOB_LIMITS } from '../../src/platforms.ts';
import { parseWorkload, POLICIES, simulate, type SimulationResult } from '../../src/simulation.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const L4 = { type: 'nvidia-l4', count: 1 };

const workload = parseWorkload({
  rules: {
    embed: { cpu: 4, memory: '16GiB', accelerator: L4, prior: { base: '1m', perGiB: '40m' } },
    'embed-spot': { cpu: 4, memory: '16GiB', accelerator: L4, spot: true, prior: { base: '2h' } },
    // Less than Cloud Run's L4 minimum of 4 vCPU and 16 GiB: Cloud Run raises it, a VM gets the least g2.
    small: { cpu: 1, memory: '2GiB', accelerator: L4, prior: { base: '1m' } },
  },
  tasks: [
    // 60 s due in 120 s: a VM's 90 s start-up can't make it, Cloud Run's L4 can.
    { id: 'quick', rule: 'embed', arrival: 0, inputBytes: MiB, trueSeconds: 60, deadlineSeconds: 120 },
    { id: 'tiny', rule: 'small', arrival: 5, inputBytes: MiB, trueSeconds: 30, deadlineSeconds: 120 },
    // Over Cloud Run's 1 h for a GPU task: only a g2 VM, standard or spot as the rule allows.
    { id: 'long', rule: 'embed', arrival: 10, inputBytes: 3 * GiB, trueSeconds: 7200 },
    { id: 'long-spot', rule: 'embed-spot', arrival: 20, inputBytes: 3 * GiB, trueSeconds: 7200 },
    // Two L4s: more than Cloud Run gives; the cheapest g2 with two is g2-standard-24.
    {
      id: 'pair',
      rule: 'embed',
      arrival: 30,
      inputBytes: MiB,
      trueSeconds: 600,
      accelerator: { type: 'nvidia-l4', count: 2 },
    },
  ],
});

const outcome = (result: SimulationResult, id: string) => result.outcomes.find((o) => o.id === id)!;
const trueSeconds = (id: string) => workload.tasks.find((task) => task.id === id)!.trueSeconds;
const onCloudRun = (seconds: number, accelerator?: typeof L4) =>
  runCost(
    DEFAULT_PRICES,
    {
      target: 'cloud-run-job',
      cpu: 4,
      memoryBytes: 16 * GiB,
      spot: false,
      ...(accelerator ? { accelerator } : {}),
    },
    seconds,
  ).usd;
const onG2 = (machineType: string, spot: boolean, seconds: number, gpus = 1) =>
  runCost(
    DEFAULT_PRICES,
    {
      target: 'vm',
      cpu: 4,
      memoryBytes: 16 * GiB,
      machineType,
      spot,
      accelerator: { type: 'nvidia-l4', count: gpus },
    },
    seconds,
  ).usd;

describe('simulate with GPUs', () => {
  it("oracle: Cloud Run's L4 for the short ones, g2 VMs for what Cloud Run can't run, each priced with its GPU", () => {
    const result = simulate(workload, DEFAULT_PRICES, 'oracle');
    const quick = outcome(result, 'quick');
    expect(quick.target).toBe('cloud-run-job');
    // Billed with the L4's per-second price on top of Cloud Run's L4 shape (4 vCPU, 16 GiB).
    expect(quick.usd).toBeCloseTo(onCloudRun(60, L4), 12);
    const gpuSecond = DEFAULT_PRICES.cloudRun.gpuSecond['nvidia-l4'];
    expect(quick.usd - onCloudRun(60)).toBeCloseTo((60 + 5) * gpuSecond, 12);
    // The 1 vCPU job is run as Cloud Run must run an L4: 4 vCPU and 16 GiB.
    expect(outcome(result, 'tiny')).toMatchObject({ target: 'cloud-run-job', missedDeadline: false });
    expect(outcome(result, 'tiny').usd).toBeCloseTo(onCloudRun(30, L4), 12);
    expect(outcome(result, 'long')).toMatchObject({
      target: 'vm',
      machineType: 'g2-standard-4',
      spot: false,
    });
    expect(outcome(result, 'long').usd).toBeCloseTo(onG2('g2-standard-4', false, 7200), 12);
    expect(outcome(result, 'long-spot')).toMatchObject({ machineType: 'g2-standard-4', spot: true });
    expect(outcome(result, 'long-spot').usd).toBeCloseTo(onG2('g2-standard-4', true, 7200), 12);
    expect(outcome(result, 'pair')).toMatchObject({ target: 'vm', machineType: 'g2-standard-24' });
    expect(outcome(result, 'pair').usd).toBeCloseTo(onG2('g2-standard-24', false, 600, 2), 12);
    expect(result.deadlineMisses).toBe(0);
  });

  it('always-cloud-run falls back to a g2 VM for the GPU work Cloud Run cannot run', () => {
    const result = simulate(workload, DEFAULT_PRICES, 'always-cloud-run');
    expect(outcome(result, 'quick')).toMatchObject({ target: 'cloud-run-job', fellBack: false });
    expect(outcome(result, 'quick').usd).toBeCloseTo(onCloudRun(60, L4), 12);
    for (const id of ['long', 'long-spot', 'pair'])
      expect(outcome(result, id), id).toMatchObject({ target: 'vm', fellBack: true });
    expect(outcome(result, 'long-spot').spot).toBe(true);
    expect(result.fallbacks).toBe(3);
  });

  it('always-vm and size-threshold put GPU work on g2 machine types', () => {
    const vm = simulate(workload, DEFAULT_PRICES, 'always-vm');
    expect(vm.outcomes.map((o) => o.machineType)).toEqual([
      'g2-standard-4',
      'g2-standard-4',
      'g2-standard-4',
      'g2-standard-4',
      'g2-standard-24',
    ]);
    expect(outcome(vm, 'quick').usd).toBeCloseTo(onG2('g2-standard-4', false, 60), 12);
    expect(outcome(vm, 'quick').missedDeadline).toBe(true);
    const threshold = simulate(workload, DEFAULT_PRICES, 'size-threshold');
    expect(outcome(threshold, 'long')).toMatchObject({ machineType: 'g2-standard-4', fellBack: false });
    expect(outcome(threshold, 'quick').target).toBe('cloud-run-job');
    expect(outcome(threshold, 'pair')).toMatchObject({ machineType: 'g2-standard-24', fellBack: true });
  });

  it("never runs a GPU task longer than Cloud Run's GPU limit on Cloud Run, under any policy", () => {
    expect(CLOUD_RUN_JOB_LIMITS.gpuTimeoutSeconds).toBe(3600);
    for (const policy of POLICIES) {
      const result = simulate(workload, DEFAULT_PRICES, policy);
      const long = result.outcomes.filter((o) => trueSeconds(o.id) > CLOUD_RUN_JOB_LIMITS.gpuTimeoutSeconds);
      expect(long.map((o) => o.id)).toEqual(['long', 'long-spot']);
      for (const o of long) expect(o.target, `${policy} ${o.id}`).toBe('vm');
    }
  });
});

describe('simulate with the Cloud Run job as defined', () => {
  // As terraform defines it by default: 2 vCPU, 4 GiB, no GPU.
  const cloudRunJob = { cpu: 2, memoryBytes: 4 * GiB };

  it("sends what the job can't hold to a VM, counted as a fallback under always-cloud-run", () => {
    const result = simulate(workload, DEFAULT_PRICES, 'always-cloud-run', { cloudRunJob });
    // Every task here has an L4 and the job none: all fall back to g2 VMs.
    expect(result.placements.cloudRun).toBe(0);
    expect(result.fallbacks).toBe(workload.tasks.length);
    for (const policy of ['cost', 'oracle'] as const)
      expect(simulate(workload, DEFAULT_PRICES, policy, { cloudRunJob }).placements.cloudRun).toBe(0);
  });

  it('bills a task that runs there as the job is defined', () => {
    const small = parseWorkload({
      rules: { tiny: { cpu: 1, memory: '1GiB', prior: { base: '10s' } } },
      tasks: [{ id: 'a', rule: 'tiny', arrival: 0, inputBytes: MiB, trueSeconds: 10 }],
    });
    const [alone, defined] = [{}, { cloudRunJob }].map(
      (options) => simulate(small, DEFAULT_PRICES, 'always-cloud-run', options).outcomes[0]!,
    );
    const billed = (cpu: number, gib: number) =>
      runCost(DEFAULT_PRICES, { target: 'cloud-run-job', cpu, memoryBytes: gib * GiB, spot: false }, 10).usd;
    expect(alone.usd).toBeCloseTo(billed(1, 1), 12);
    expect(defined.usd).toBeCloseTo(billed(2, 4), 12);
  });
});
