import { describe, expect, it } from 'vitest';
import { actualCost } from '../../src/cost/actual.ts';
import { DEFAULT_PRICES, type PriceTable } from '../../src/cost/prices.ts';
import { newJob, type AttemptRecord, type Job } from '../../src/job.ts';
import { parseRoutingConfig, RoutingConfigError } from '../../src/routing/index.ts';

// Round numbers, so the sums can be checked by hand.
const PRICES: PriceTable = {
  ...DEFAULT_PRICES,
  cloudRun: { ...DEFAULT_PRICES.cloudRun, vcpuSecond: 0.00001, gibSecond: 0.000001 },
  machineTypes: { ...DEFAULT_PRICES.machineTypes, 'e2-standard-2': { onDemand: 0.36, spot: 0.036 } },
  bootDisk: { gib: 0, gibMonth: 0 },
  spotPreemptionsPerHour: 0.5, // must not be added to a measured run
  startup: {
    'cloud-run-job': { waitedSeconds: 10, billedSeconds: 0 },
    vm: { waitedSeconds: 60, billedSeconds: 40 },
  },
};

const GIB = 1024 ** 3;
function job(attempts: AttemptRecord[], template: Job['template']): Job {
  return {
    ...newJob('a'.repeat(32), { kind: 'request', task: 'logreg', args: [], env: {} }, 't0'),
    template,
    attempts,
  };
}
const at = (s: number) => new Date(Date.UTC(2026, 10, 22) + s * 1000).toISOString();

describe('actualCost', () => {
  it('prices each attempt by its measured run, with no expected rework for spot, and adds them', () => {
    const cost = actualCost(
      job(
        [
          // Preempted after 20 minutes on spot: billed 1200 + 40 s at $0.036/h.
          {
            attempt: 1,
            target: 'vm',
            spot: true,
            launchedAt: at(0),
            startedAt: at(60),
            finishedAt: at(1260),
            outcome: 'preempted',
          },
          // 30 s on standard: the one-minute minimum applies ($0.36/h x 70 s).
          {
            attempt: 2,
            target: 'vm',
            spot: false,
            launchedAt: at(1300),
            startedAt: at(1360),
            finishedAt: at(1390),
            outcome: 'succeeded',
          },
        ],
        { args: [], env: {}, spot: true, cpu: 2, memoryBytes: 8 * GIB, machineType: 'e2-standard-2' },
      ),
      PRICES,
    )!;
    expect(cost.billedSeconds).toBe(1240 + 70);
    expect(cost.usd).toBeCloseTo((1240 * 0.036) / 3600 + (70 * 0.36) / 3600, 12);
    expect(cost.detail).toEqual([
      'attempt 1 vm e2-standard-2 spot: 1200 s run, $0.012',
      'attempt 2 vm e2-standard-2 standard: 30 s run, $0.0070',
    ]);
  });

  it('bills Cloud Run per 100 ms of the run, and leaves out attempts not yet ended', () => {
    const cost = actualCost(
      job(
        [
          {
            attempt: 1,
            target: 'cloud-run-job',
            launchedAt: at(0),
            startedAt: at(5),
            finishedAt: at(17.34),
            outcome: 'failed',
          },
          { attempt: 2, target: 'cloud-run-job', launchedAt: at(60) },
        ],
        { args: [], env: {}, spot: false, cpu: 2, memoryBytes: 4 * GIB },
      ),
      PRICES,
    )!;
    expect(cost.billedSeconds).toBeCloseTo(12.4, 9);
    expect(cost.usd).toBeCloseTo(12.4 * (2 * 0.00001 + 4 * 0.000001), 12);
    expect(cost.detail).toHaveLength(1);
  });

  it('has nothing to say of a job never routed or never ended', () => {
    expect(actualCost(job([], undefined), PRICES)).toBeUndefined();
    expect(
      actualCost(
        job([{ attempt: 1, target: 'vm', launchedAt: at(0) }], { args: [], env: {}, spot: false }),
        PRICES,
      ),
    ).toBeUndefined();
  });
});

describe('prices in the routing config', () => {
  it('overrides the defaults it names, and names a wrong field', () => {
    const config = parseRoutingConfig({
      rules: [{ name: 'all', target: 'vm' }],
      prices: { spotPreemptionsPerHour: 0.1 },
    });
    expect(config.prices).toEqual({ ...DEFAULT_PRICES, spotPreemptionsPerHour: 0.1 });
    expect(parseRoutingConfig({ rules: [{ name: 'all', target: 'vm' }] }).prices).toBeUndefined();
    const bad = () =>
      parseRoutingConfig({ rules: [{ name: 'all', target: 'vm' }], prices: { spotPreemptionsPerHour: -1 } });
    expect(bad).toThrow(RoutingConfigError);
    expect(bad).toThrow(/^prices\.spotPreemptionsPerHour: /);
  });
});
