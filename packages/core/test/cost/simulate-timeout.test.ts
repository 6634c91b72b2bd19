// The simulator kills what Cloud Run would: a run past its task timeout (the Cloud Run job's, as
// WORKER_JOB_TIMEOUT says, for a job without its own) is paid up to the timeout and runs again on a
// VM. The cost policy, judging Cloud Run's timeout at p99 of the run, rarely gets there; the point
// estimate it used before (the median taken as exact) gets there a quarter of the time.
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, runCost } from '../../src/cost/prices.ts';
import { simulate, simulateAll } from '../../src/simulation.ts';
import type { CloudRunJobShape } from '../../src/platforms.ts';
import type { Workload, WorkloadTask } from '../../src/cost/workload.ts';
import { normal, random } from '../../../../workloads/seeded-random.ts';

const GiB = 1024 ** 3;

/** 400 runs an hour apart, lognormal around 30 s (σ 1.2), 2 vCPU and 4 GiB, not spot, no deadline. */
function shortRuns(seed: number): Workload {
  const next = random(seed);
  const tasks: WorkloadTask[] = Array.from({ length: 400 }, (_, i) => ({
    id: `t${i}`,
    rule: 'short',
    arrival: i * 3600,
    inputBytes: 10 * 1024 ** 2,
    trueSeconds: 30 * Math.exp(1.2 * normal(next)),
  }));
  return {
    rules: {
      short: { cpu: 2, memoryBytes: 4 * GiB, spot: false, prior: { baseSeconds: 30, secondsPerGiB: 0 } },
    },
    tasks,
  };
}

// A Cloud Run job defined with a 60 s task timeout.
const TIMED: CloudRunJobShape = { cpu: 2, memoryBytes: 4 * GiB, timeoutSeconds: 60 };

describe('a run past the Cloud Run task timeout', () => {
  const workload = shortRuns(11);

  it('is killed there under point estimates, paid up to the timeout and again on a VM', () => {
    const point = simulate(workload, DEFAULT_PRICES, 'cost', { estimates: 'point', cloudRunJob: TIMED });
    const killed = point.outcomes.filter((o) => o.killed !== undefined);
    // The median (about 30 s) fits 60 s, so Cloud Run is chosen; P(run > 60 s) = P(z > ln 2 / 1.2) ≈ 28%.
    expect(point.killed).toBe(killed.length);
    expect(killed.length).toBeGreaterThan(60);
    const byId = new Map(workload.tasks.map((task) => [task.id, task]));
    for (const outcome of killed) {
      const task = byId.get(outcome.id)!;
      expect(task.trueSeconds).toBeGreaterThan(60);
      expect(outcome.killed!.afterSeconds).toBe(60);
      const first = runCost(DEFAULT_PRICES, { target: 'cloud-run-job', ...TIMED, spot: false }, 60);
      const machineType = outcome.killed!.rerunMachineType!;
      const again = runCost(
        DEFAULT_PRICES,
        { target: 'vm', cpu: 2, memoryBytes: 4 * GiB, machineType, spot: false },
        task.trueSeconds,
      );
      expect(outcome.usd).toBeCloseTo(first.usd + again.usd, 12);
      expect(outcome.waitedSeconds).toBeCloseTo(first.waitedSeconds + again.waitedSeconds, 9);
    }
    // No run within the timeout is killed.
    for (const outcome of point.outcomes.filter(
      (o) => o.killed === undefined && o.target === 'cloud-run-job',
    ))
      expect(byId.get(outcome.id)!.trueSeconds).toBeLessThanOrEqual(60);
  });

  it('is rarely reached by the cost policy, which judges the timeout at p99 of the run', () => {
    const [point, distribution] = (['point', 'distribution'] as const).map((estimates) =>
      simulate(workload, DEFAULT_PRICES, 'cost', { estimates, cloudRunJob: TIMED }),
    );
    expect(distribution.killed).toBeLessThanOrEqual(4); // about 1% of 400, while it learns the spread
    expect(point.killed).toBeGreaterThan(25 * distribution.killed);
    // It pays a little more here (VMs for nearly all, where the median put every run on Cloud Run and
    // paid for a quarter twice), but the pipeline doesn't run a timed-out job again by itself: each
    // kill would be a FAILED job, which the simulator's run again on a VM only prices.
    expect(distribution.usd).toBeLessThan(1.05 * point.usd);
  });

  it('is never reached by the oracle or the fixed policies, which know the true run', () => {
    for (const result of simulateAll(workload, DEFAULT_PRICES, { cloudRunJob: TIMED }))
      if (result.policy !== 'cost') expect(result.killed, result.policy).toBe(0);
  });

  it('says which task it is when no VM could run it again', () => {
    const noVms = { ...DEFAULT_PRICES, machineTypes: {} };
    const firstKilled = workload.tasks.find((task) => task.trueSeconds > 60)!;
    expect(() => simulate(workload, noVms, 'cost', { estimates: 'point', cloudRunJob: TIMED })).toThrow(
      `simulate: task ${firstKilled.id} outlasted Cloud Run and can run on no VM: no priced machine type fits 2 vCPU, 4 GiB memory`,
    );
  });

  it('is no kill without the definition’s timeout: Cloud Run allows 168 h', () => {
    expect(simulate(workload, DEFAULT_PRICES, 'cost', { estimates: 'point' }).killed).toBe(0);
  });
});
