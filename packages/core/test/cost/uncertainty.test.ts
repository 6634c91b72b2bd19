// Estimates that know how wrong they can be (issue 18): the estimator's spread, and the cost policy
// deciding cost on the expected run and deadlines at p90, against hindsight (the oracle) and against
// the point estimate it used before (`estimates: 'point'`: the learned median taken as exact).
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PRICES,
  durationQuantile,
  estimateDuration,
  exactDuration,
  fitDurations,
  normalQuantile,
  PRIOR_LOG_SIGMA,
  type DurationSample,
} from '../../src/index.ts';
import { savingShare, simulate, simulateAll, type SimulationResult } from '../../src/simulation.ts';
import type { Workload, WorkloadTask } from '../../src/cost/workload.ts';
import { normal, random } from '../../../../workloads/seeded-random.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('normalQuantile', () => {
  it.each([
    [0.5, 0],
    [0.9, 1.2815515655],
    [0.975, 1.9599639845],
    [0.999, 3.0902323062],
    [0.01, -2.326347874],
  ])('of %s is %s', (p, z) => {
    expect(normalQuantile(p)).toBeCloseTo(z, 7);
  });

  it('refuses what is not a probability within (0, 1)', () => {
    for (const p of [0, 1, -0.1, Number.NaN]) expect(() => normalQuantile(p)).toThrow(RangeError);
  });
});

describe('the estimator’s spread', () => {
  /** Runs whose time has nothing to do with their input: lognormal around `median`. */
  const heavy = (count: number, median: number, sigma: number, seed = 3): DurationSample[] => {
    const next = random(seed);
    return Array.from({ length: count }, () => ({
      inputBytes: Math.round((1 + 99 * next()) * MiB),
      seconds: median * Math.exp(sigma * normal(next)),
    }));
  };

  it('learns a heavy tail: the median, a σ near the truth, a mean about twice the median', () => {
    const model = fitDurations(heavy(200, 18, 1.2), { baseSeconds: 30, secondsPerGiB: 60 });
    const estimate = estimateDuration(model, 50 * MiB);
    expect(estimate.medianSeconds).toBeGreaterThan(14);
    expect(estimate.medianSeconds).toBeLessThan(23);
    expect(estimate.logSigma).toBeGreaterThan(1.05);
    expect(estimate.logSigma).toBeLessThan(1.35);
    expect(estimate.seconds / estimate.medianSeconds).toBeGreaterThan(1.7);
    // p90 is e^(1.28 σ) above the median, about 4.6 times at σ = 1.2.
    expect(durationQuantile(estimate, 0.9) / estimate.medianSeconds).toBeCloseTo(
      Math.exp(normalQuantile(0.9) * estimate.logSigma),
      9,
    );
    expect(durationQuantile(estimate, 0.5)).toBe(estimate.medianSeconds);
  });

  it('starts from the prior’s spread and lets the runs replace it', () => {
    const steady = heavy(200, 60, 0.1, 5);
    const sigmaAfter = (n: number) => fitDurations(steady.slice(0, n)).logSigma;
    expect(sigmaAfter(0)).toBe(PRIOR_LOG_SIGMA);
    expect(sigmaAfter(3)).toBeLessThan(PRIOR_LOG_SIGMA);
    expect(sigmaAfter(3)).toBeGreaterThan(0.2);
    expect(sigmaAfter(200)).toBeLessThan(0.11);
  });

  it('takes a declared duration as exact', () => {
    const exact = exactDuration(45, 'declared: 45s');
    expect([exact.seconds, exact.medianSeconds, durationQuantile(exact, 0.99)]).toEqual([45, 45, 45]);
  });
});

/**
 * One rule of 1,000 tasks two minutes apart (so the policy learns as they finish), 2 vCPU and
 * 4 GiB, spot allowed, inputs of 1 to 100 MiB; a quarter with a 2-minute deadline. `seconds` draws
 * a task's true run from its input.
 */
function oneRule(
  seed: number,
  seconds: (inputBytes: number, next: () => number) => number,
  deadlineShare = 0.25,
): Workload {
  const next = random(seed);
  const tasks: WorkloadTask[] = [];
  for (let i = 0; i < 1000; i++) {
    const inputBytes = Math.round(MiB * Math.exp(Math.log(100) * next()));
    const trueSeconds = Math.max(0.5, seconds(inputBytes, next));
    const deadline = next() < deadlineShare ? { deadlineSeconds: 120 } : {};
    tasks.push({ id: `t${i}`, rule: 'adhoc', arrival: i * 120, inputBytes, trueSeconds, ...deadline });
  }
  return {
    rules: {
      adhoc: { cpu: 2, memoryBytes: 4 * GiB, spot: true, prior: { baseSeconds: 30, secondsPerGiB: 60 } },
    },
    tasks,
  };
}

/** Of a result's outcomes, those of the tasks with a deadline (`urgent`) or without. */
const share = (result: SimulationResult, workload: Workload, urgent: boolean) => {
  const due = new Set(workload.tasks.filter((t) => t.deadlineSeconds !== undefined).map((t) => t.id));
  const outcomes = result.outcomes.filter((o) => due.has(o.id) === urgent);
  return {
    usd: outcomes.reduce((sum, o) => sum + o.usd, 0),
    misses: outcomes.filter((o) => o.missedDeadline).length,
  };
};

/**
 * The cheapest a policy without hindsight could pay on a rule whose runs don't follow their input:
 * knowing the runs' distribution exactly but not each run, it has nothing to tell one task from
 * another but whether it has a deadline, so it sends each of the two kinds to one place. Of the fixed
 * places (Cloud Run; a spot VM, cheaper than a standard one for runs of minutes), the cheapest for
 * each kind that misses no more of its deadlines than the oracle.
 */
function withoutHindsight(workload: Workload, oracle: SimulationResult): number {
  const fixed = (['always-cloud-run', 'always-vm'] as const).map((p) =>
    simulate(workload, DEFAULT_PRICES, p),
  );
  const cheapest = (urgent: boolean) => {
    const most = share(oracle, workload, urgent).misses;
    const fits = fixed.map((r) => share(r, workload, urgent)).filter((part) => part.misses <= most);
    return Math.min(...fits.map((part) => part.usd));
  };
  return cheapest(true) + cheapest(false);
}

const policies = (workload: Workload) => {
  const [oracle, cost, point] = [
    simulate(workload, DEFAULT_PRICES, 'oracle'),
    simulate(workload, DEFAULT_PRICES, 'cost'),
    simulate(workload, DEFAULT_PRICES, 'cost', { estimates: 'point' }),
  ];
  return { oracle, cost, point, tasks: workload.tasks.length };
};
const extraMisses = (result: SimulationResult, oracle: SimulationResult) =>
  result.deadlineMisses - oracle.deadlineMisses;

const SEEDS = [1, 2, 3, 4, 5, 6];

describe.each([30, 18])(
  'the cost policy on heavy-tailed work of median %s s with 2-minute deadlines',
  (median) => {
    // Lognormal runs (σ 1.2) unrelated to their input: from a few seconds to minutes. With the median
    // alone a spot VM's 90 s of start-up plus the run "fits" the deadline. Six workloads of 1,000 tasks.
    const runs = SEEDS.map((seed) => {
      const workload = oneRule(seed, (_, next) => median * Math.exp(1.2 * normal(next)));
      const result = policies(workload);
      return { seed, ...result, bound: withoutHindsight(workload, result.oracle) };
    });

    it('misses no more deadlines than hindsight, within 1% of the tasks, on every workload', () => {
      for (const { cost, oracle, tasks } of runs)
        expect(extraMisses(cost, oracle)).toBeLessThanOrEqual(0.01 * tasks);
    });

    it('pays within 1% of the cheapest a policy without hindsight could, on every workload', () => {
      for (const { cost, bound } of runs) expect(cost.usd).toBeLessThanOrEqual(1.01 * bound);
    });

    it('stays within 5% of the oracle’s cost wherever any policy without hindsight can', () => {
      for (const { cost, oracle, bound } of runs)
        if (bound <= 1.05 * oracle.usd) expect(cost.usd).toBeLessThanOrEqual(1.05 * oracle.usd);
      // At a median of 30 s that is 5 workloads of 6, and the cost policy's average is within 5% too.
      // At 18 s, near the 9 s break-even between Cloud Run and a spot VM, what hindsight knows of each
      // run is worth 9-12% on every workload: no policy that doesn't know it can come within 5%.
      const within = runs.filter(({ bound, oracle }) => bound <= 1.05 * oracle.usd).length;
      const mean = runs.reduce((sum, { cost, oracle }) => sum + cost.usd / oracle.usd, 0) / runs.length;
      if (median === 30) {
        expect(within).toBeGreaterThanOrEqual(5);
        expect(mean).toBeLessThanOrEqual(1.05);
      } else {
        expect(within).toBe(0);
        for (const { bound, oracle } of runs) expect(bound).toBeGreaterThan(1.08 * oracle.usd);
      }
    });

    it('where the point estimate missed at least 2% of the tasks more, on every workload', () => {
      // The same test fails the policy as it was: it sent urgent work to spot VMs on the median.
      for (const { point, oracle, tasks } of runs)
        expect(extraMisses(point, oracle)).toBeGreaterThanOrEqual(0.02 * tasks);
    });
  },
);

describe('the cost policy on work that scales with its input', () => {
  // 5 s + 800 s/GiB, within +-15%: the estimator's line is nearly the truth.
  const workload = oneRule(
    19,
    (inputBytes, next) => (5 + 800 * (inputBytes / GiB)) * Math.exp(0.15 * normal(next)),
  );
  const { oracle, cost, point } = policies(workload);

  it('is no worse than the point estimate: no more misses, within 1% of its cost, 2% of the oracle’s', () => {
    expect(cost.deadlineMisses).toBeLessThanOrEqual(point.deadlineMisses);
    expect(cost.deadlineMisses).toBeLessThanOrEqual(oracle.deadlineMisses + 1);
    expect(cost.usd).toBeLessThanOrEqual(1.01 * point.usd);
    expect(cost.usd).toBeLessThanOrEqual(1.02 * oracle.usd);
  });

  it('pays the same where there is no deadline, and more only to meet deadlines the point estimate missed', () => {
    const [relaxed, relaxedBefore] = [share(cost, workload, false), share(point, workload, false)];
    expect(Math.abs(relaxed.usd / relaxedBefore.usd - 1)).toBeLessThan(0.001);
    const [urgent, urgentBefore] = [share(cost, workload, true), share(point, workload, true)];
    expect(urgentBefore.misses).toBeGreaterThan(urgent.misses);
    // Every task it placed otherwise has a deadline but one (near the break-even, on mean or median).
    const before = new Map(point.outcomes.map((o) => [o.id, o]));
    const due = new Set(workload.tasks.filter((t) => t.deadlineSeconds !== undefined).map((t) => t.id));
    const moved = cost.outcomes.filter((o) => {
      const other = before.get(o.id)!;
      return o.target !== other.target || o.spot !== other.spot;
    });
    expect(moved.filter((o) => !due.has(o.id)).length).toBeLessThanOrEqual(1);
    expect(urgent.usd - urgentBefore.usd).toBeGreaterThan(0);
  });

  it('decides deadlines as before at deadlineQuantile 0.5, the median', () => {
    const atMedian = simulate(workload, DEFAULT_PRICES, 'cost', { deadlineQuantile: 0.5 });
    expect(atMedian.deadlineMisses).toBe(point.deadlineMisses);
    expect(Math.abs(atMedian.usd / point.usd - 1)).toBeLessThan(0.001);
  });
});

describe('savingShare', () => {
  it('is the share of what the oracle saves over the cheapest fixed policy that the cost policy saves', () => {
    // No deadlines: no fixed policy can undercut the oracle by missing them.
    const workload = oneRule(20, (_, next) => 30 * Math.exp(0.5 * normal(next)), 0);
    const results = simulateAll(workload, DEFAULT_PRICES);
    const share = savingShare(results)!;
    const fixed = results.filter((r) => !['cost', 'oracle'].includes(r.policy));
    expect(share.bestFixed.usd).toBe(Math.min(...fixed.map((r) => r.usd)));
    expect(share.share).toBeCloseTo(
      (share.bestFixed.usd - share.cost.usd) / (share.bestFixed.usd - share.oracle.usd),
      12,
    );
    expect(share.share).toBeGreaterThanOrEqual(0);
    expect(share.share).toBeLessThanOrEqual(1);
    expect(savingShare(results.filter((r) => r.policy !== 'oracle'))).toBeUndefined();
    // A fixed policy cheaper than hindsight (it misses deadlines the oracle meets): no share to give.
    const cheap = results.map((r) => (r.policy === 'always-vm' ? { ...r, usd: share.oracle.usd / 2 } : r));
    expect(savingShare(cheap)!.share).toBeUndefined();
  });
});
