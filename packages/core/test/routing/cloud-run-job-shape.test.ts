// The Cloud Run job's defined resources (RouteContext.cloudRunJob): an execution can't change its
// cpu, memory or GPU, so a job that needs more runs on a VM, and one that runs there is shaped, and
// priced, as the job is defined.
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, runCost } from '../../src/cost/prices.ts';
import { cloudRunShapeBreaches, cloudRunTaskTimeout, type CloudRunJobShape } from '../../src/platforms.ts';
import { route } from '../../src/routing/route.ts';
import { config, GiB, launched, object } from './support.ts';

// As terraform defines it by default: 2 vCPU, 4 GiB, no GPU.
const DEFINED: CloudRunJobShape = { cpu: 2, memoryBytes: 4 * GiB };
const context = { prices: DEFAULT_PRICES, cloudRunJob: DEFINED };
const input = object('in/data.csv');
const fixed = (job: Record<string, unknown>) => config({ name: 'work', target: 'cloud-run-job', job });
const byCost = (job: Record<string, unknown>) =>
  config({ name: 'work', mode: 'cost', target: ['cloud-run-job', 'vm'], job, prior: { base: '5s' } });

describe('cloudRunShapeBreaches', () => {
  it('names each resource the job needs beyond the definition', () => {
    expect(
      cloudRunShapeBreaches({ args: [], env: {}, spot: false, cpu: 2, memoryBytes: 4 * GiB }, DEFINED),
    ).toEqual([]);
    expect(
      cloudRunShapeBreaches({ args: [], env: {}, spot: false, cpu: 4, memoryBytes: 8 * GiB }, DEFINED),
    ).toEqual(['4 vCPU (the Cloud Run job has 2)', '8 GiB memory (the Cloud Run job has 4 GiB)']);
    // An L4 needs 4 vCPU and 16 GiB on Cloud Run, and a job defined with one.
    const gpu = { args: [], env: {}, spot: false, accelerator: { type: 'nvidia-l4', count: 1 } };
    expect(cloudRunShapeBreaches(gpu, DEFINED)).toEqual([
      '4 vCPU (the Cloud Run job has 2)',
      '16 GiB memory (the Cloud Run job has 4 GiB)',
      '1 nvidia-l4 (the Cloud Run job has no GPU)',
    ]);
    const withL4 = { cpu: 4, memoryBytes: 16 * GiB, accelerator: { type: 'nvidia-l4', count: 1 } };
    expect(cloudRunShapeBreaches(gpu, withL4)).toEqual([]);
  });
});

describe('route with the Cloud Run job as defined', () => {
  it('runs what fits there with the definition’s resources, which a smaller ask does not lower', () => {
    const decision = launched(
      route({ object: input, declared: {} }, fixed({ cpu: 1, memory: '1GiB' }), context),
    );
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.job).toMatchObject({ cpu: 2, memoryBytes: 4 * GiB });
    // Billed as it runs: 2 vCPU and 4 GiB.
    const run = decision.estimate!.runSeconds;
    const asDefined = runCost(DEFAULT_PRICES, { target: 'cloud-run-job', ...DEFINED, spot: false }, run);
    expect(decision.estimate!.usd).toBeCloseTo(asDefined.usd, 12);
  });

  it('sends a job that needs more to a VM, and says why', () => {
    const declared = { cpu: 4, memoryBytes: 8 * GiB };
    const decision = launched(route({ object: input, declared }, fixed({}), context));
    expect(decision.target).toBe('vm');
    expect(decision.reason).toContain(
      'chose cloud-run-job, but it needs 4 vCPU (the Cloud Run job has 2) and 8 GiB memory (the Cloud Run job has 4 GiB): vm ',
    );
    // Without the definition, as before: Cloud Run Jobs' own limits only.
    expect(launched(route({ object: input, declared }, fixed({}))).target).toBe('cloud-run-job');
  });

  it('sends a GPU job to a g2 VM when the Cloud Run job has no GPU', () => {
    const decision = launched(
      route({ object: input, declared: { gpu: { type: 'nvidia-l4', count: 1 } } }, fixed({}), context),
    );
    expect(decision).toMatchObject({ target: 'vm', job: { machineType: 'g2-standard-4' } });
    expect(decision.reason).toContain('1 nvidia-l4 (the Cloud Run job has no GPU)');
  });

  it('in cost mode, counts Cloud Run out for what it can’t hold and prices it as defined', () => {
    const big = launched(route({ object: input, declared: {} }, byCost({ cpu: 4, memory: '8GiB' }), context));
    expect(big.target).toBe('vm');
    const cloudRun = big.estimate!.options.find((option) => option.target === 'cloud-run-job')!;
    expect(cloudRun).toMatchObject({ feasible: false });
    expect(cloudRun.why).toContain('needs 4 vCPU (the Cloud Run job has 2)');

    const small = launched(
      route({ object: input, declared: {} }, byCost({ cpu: 1, memory: '1GiB' }), context),
    );
    expect(small.target).toBe('cloud-run-job');
    expect(small.job).toMatchObject({ cpu: 2, memoryBytes: 4 * GiB });
    const billed = runCost(
      DEFAULT_PRICES,
      { target: 'cloud-run-job', ...DEFINED, spot: false },
      small.estimate!.runSeconds,
    );
    expect(small.estimate!.usd).toBeCloseTo(billed.usd, 12);
  });
});

describe('a Cloud Run job defined with a GPU', () => {
  // Every task of it gets the L4 and, with it, the 1 h task timeout of GPU tasks
  // (https://cloud.google.com/run/docs/configuring/task-timeout), whether it asked for a GPU or not.
  const WITH_L4: CloudRunJobShape = {
    cpu: 4,
    memoryBytes: 16 * GiB,
    accelerator: { type: 'nvidia-l4', count: 1 },
  };
  const gpuContext = { prices: DEFAULT_PRICES, cloudRunJob: WITH_L4 };

  it('sends a CPU job that needs more than the hour to a VM, and says why', () => {
    const decision = launched(route({ object: input, declared: {} }, fixed({ timeout: '2h' }), gpuContext));
    expect(decision.target).toBe('vm');
    expect(decision.reason).toContain(
      'chose cloud-run-job, but it needs 2h (the Cloud Run job has a GPU, and Cloud Run Jobs allow 1h with one)',
    );
    // Within the hour, or on a Cloud Run job with no GPU, it runs there.
    expect(
      launched(route({ object: input, declared: {} }, fixed({ timeout: '50m' }), gpuContext)).target,
    ).toBe('cloud-run-job');
    expect(launched(route({ object: input, declared: {} }, fixed({ timeout: '2h' }), context)).target).toBe(
      'cloud-run-job',
    );
  });

  it('in cost mode, counts it out for a CPU run expected past the hour', () => {
    const long = config({
      name: 'work',
      mode: 'cost',
      target: ['cloud-run-job', 'vm'],
      job: {},
      prior: { base: '90m' },
    });
    const decision = launched(route({ object: input, declared: {} }, long, gpuContext));
    expect(decision.target).toBe('vm');
    const cloudRun = decision.estimate!.options.find((option) => option.target === 'cloud-run-job')!;
    expect(cloudRun).toMatchObject({ feasible: false });
    expect(cloudRun.why).toContain('the Cloud Run job has a GPU, and Cloud Run Jobs allow 1h with one');
  });
});

describe('the Cloud Run job’s own task timeout', () => {
  // A job without a timeout of its own runs with the definition's (terraform's worker_timeout_seconds,
  // 1 h): the execution would be killed at it, so a run likely to outlast it is no Cloud Run option.
  const TIMED: CloudRunJobShape = { ...DEFINED, timeoutSeconds: 3600 };
  const timedContext = { prices: DEFAULT_PRICES, cloudRunJob: TIMED };
  const long = (job: Record<string, unknown>, base: string) =>
    config({ name: 'work', mode: 'cost', target: ['cloud-run-job', 'vm'], job, prior: { base } });

  it('counts Cloud Run out, in cost mode, for a run whose p99 passes it, and says how to give more', () => {
    const decision = launched(route({ object: input, declared: {} }, long({}, '50m'), timedContext));
    expect(decision.target).toBe('vm');
    const cloudRun = decision.estimate!.options.find((option) => option.target === 'cloud-run-job')!;
    expect(cloudRun).toMatchObject({ feasible: false });
    expect(cloudRun).not.toHaveProperty('usd'); // it can't run there, at any price
    expect(cloudRun.why).toMatch(
      /^needs [\dhms ]+ at p99 of the run \(the Cloud Run job's timeout is 1h; the rule's job\.timeout overrides it\)$/,
    );
    // Without the definition's timeout the same run is a Cloud Run option, as it is with a rule
    // timeout that covers it (the launcher passes that timeout to the execution).
    const open = launched(route({ object: input, declared: {} }, long({}, '50m'), context));
    expect(open.estimate!.options.find((o) => o.target === 'cloud-run-job')).toHaveProperty('usd');
    const covered = launched(
      route({ object: input, declared: {} }, long({ timeout: '4h' }, '50m'), timedContext),
    );
    expect(covered.estimate!.options.find((o) => o.target === 'cloud-run-job')).toHaveProperty('usd');
  });

  it('keeps Cloud Run for a run well inside it', () => {
    const decision = launched(route({ object: input, declared: {} }, long({}, '30s'), timedContext));
    expect(decision.estimate!.options.find((o) => o.target === 'cloud-run-job')).toHaveProperty('usd');
  });
});

describe('cloudRunTaskTimeout', () => {
  const job = { args: [], env: {}, spot: false };
  it('is the job’s own, else the definition’s, else Cloud Run’s limit (1 h with a GPU)', () => {
    expect(cloudRunTaskTimeout({ ...job, timeoutSeconds: 120 }, { ...DEFINED, timeoutSeconds: 3600 })).toBe(
      120,
    );
    expect(cloudRunTaskTimeout(job, { ...DEFINED, timeoutSeconds: 3600 })).toBe(3600);
    expect(cloudRunTaskTimeout(job, DEFINED)).toBe(168 * 3600);
    expect(cloudRunTaskTimeout(job)).toBe(168 * 3600);
    expect(cloudRunTaskTimeout({ ...job, accelerator: { type: 'nvidia-l4', count: 1 } })).toBe(3600);
    const withL4 = { cpu: 4, memoryBytes: 16 * GiB, accelerator: { type: 'nvidia-l4', count: 1 } };
    expect(cloudRunTaskTimeout(job, withL4)).toBe(3600);
  });
});
