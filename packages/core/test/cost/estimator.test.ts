import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PRIOR,
  estimateDuration,
  PRIOR_LOG_SIGMA,
  fitDurations,
  type DurationPrior,
  type DurationSample,
} from '../../src/index.ts';

const GiB = 1024 ** 3;

/** A seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** Runs of `base + perGiB x size`, each within +-10%, sizes from 0.1 to 20 GiB. */
function history(count: number, truth: DurationPrior, seed = 1): DurationSample[] {
  const next = random(seed);
  return Array.from({ length: count }, () => {
    const gib = 0.1 + 19.9 * next();
    const seconds = (truth.baseSeconds + truth.secondsPerGiB * gib) * (0.9 + 0.2 * next());
    return { inputBytes: Math.round(gib * GiB), seconds };
  });
}

const truth = { baseSeconds: 41, secondsPerGiB: 12.3 };
const relativeError = (got: number, want: number) => Math.abs(got - want) / want;

describe('fitDurations', () => {
  it('uses its prior when there is no history', () => {
    const model = fitDurations([], { baseSeconds: 30, secondsPerGiB: 60 });
    expect(model).toEqual({
      baseSeconds: 30,
      secondsPerGiB: 60,
      runs: 0,
      basis: 'prior: no history yet, 30 s + 60 s/GiB',
      logCenter: 0,
      logSigma: PRIOR_LOG_SIGMA,
    });
    // The prior's line is the median; the mean is e^(σ²/2) above it.
    expect(estimateDuration(model, 2 * GiB)).toEqual({
      seconds: 150 * Math.exp(0.125),
      medianSeconds: 150,
      logSigma: PRIOR_LOG_SIGMA,
      basis: model.basis,
    });
    expect(fitDurations([])).toMatchObject(DEFAULT_PRIOR);
  });

  it('converges on synthetic history', () => {
    const prior = { baseSeconds: 600, secondsPerGiB: 0 }; // far from the truth on purpose
    const errors = [3, 20, 200].map((count) => {
      const model = fitDurations(history(count, truth), prior);
      return Math.max(
        relativeError(model.baseSeconds, truth.baseSeconds),
        relativeError(model.secondsPerGiB, truth.secondsPerGiB),
      );
    });
    // Three runs still lean on the prior; a prior 15 times off leaves no lasting bias.
    expect(errors[0]).toBeGreaterThan(0.5);
    expect(errors[1]).toBeLessThan(0.15);
    expect(errors[2]).toBeLessThan(0.05); // what is left is the runs' own +-10% noise:
    const runsAlone = fitDurations(history(200, truth), prior, { priorWeight: 0 });
    expect(
      relativeError(fitDurations(history(200, truth), prior).baseSeconds, runsAlone.baseSeconds),
    ).toBeLessThan(0.01);
    const model = fitDurations(history(200, truth), prior);
    expect(model.basis).toMatch(
      /^history: 200 runs \+ prior as 3, Theil–Sen, \d+ s \+ \d+ s\/GiB, spread x1\.\d\d$/,
    );
    expect(estimateDuration(model, 10 * GiB).seconds).toBeCloseTo(41 + 123, -1);
  });

  it('ignores outliers: 10% of the runs 20 times slower', () => {
    const runs = history(200, truth, 7).map((run, i) =>
      i % 10 === 3 ? { ...run, seconds: run.seconds * 20 } : run,
    );
    const model = fitDurations(runs, truth);
    expect(relativeError(model.secondsPerGiB, truth.secondsPerGiB)).toBeLessThan(0.1);
    const estimate = estimateDuration(model, 5 * GiB);
    expect(relativeError(estimate.medianSeconds, 41 + 5 * 12.3)).toBeLessThan(0.1);
    // They do move the mean, as they move what the runs cost: up by more than half.
    expect(estimate.seconds / estimate.medianSeconds).toBeGreaterThan(1.5);
    // A least-squares line through the same runs is dragged far off: the fit is what resists them.
    const xs = runs.map((run) => run.inputBytes / GiB);
    const ys = runs.map((run) => run.seconds);
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const [mx, my] = [mean(xs), mean(ys)];
    const slope =
      xs.reduce((sum, x, i) => sum + (x - mx) * (ys[i] - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
    expect(relativeError(slope, truth.secondsPerGiB)).toBeGreaterThan(0.5);
  });

  it('lets the prior decide while there are few runs, and the runs once there are more', () => {
    const prior = { baseSeconds: 30, secondsPerGiB: 60 };
    const two = [
      { inputBytes: 1 * GiB, seconds: 100 },
      { inputBytes: 3 * GiB, seconds: 140 },
    ];
    // Slopes: median(20 | 60, 60, 60) = 60; intercepts: median(40, -40 | 30, 30, 30) = 30.
    expect(fitDurations(two, prior)).toMatchObject({ baseSeconds: 30, secondsPerGiB: 60, runs: 2 });
    // The runs alone: slope 20 s/GiB, intercept median(80, 80).
    expect(fitDurations(two, prior, { priorWeight: 0 })).toMatchObject({
      baseSeconds: 80,
      secondsPerGiB: 20,
    });
    const twelve = fitDurations(history(12, truth, 5), prior);
    expect(relativeError(twelve.secondsPerGiB, truth.secondsPerGiB)).toBeLessThan(0.15);
    expect(relativeError(twelve.baseSeconds, truth.baseSeconds)).toBeLessThan(0.3);
  });

  it('keeps the prior slope when every run had the same input size', () => {
    const runs = [50, 60, 70].map((seconds) => ({ inputBytes: 2 * GiB, seconds }));
    const model = fitDurations(runs, { baseSeconds: 10, secondsPerGiB: 5 }, { priorWeight: 0 });
    expect(model.secondsPerGiB).toBe(5);
    expect(model.baseSeconds).toBe(50); // median(50, 60, 70) - 5 x 2
    expect(model.basis).toBe(
      'history: 3 runs + prior as 0, median (one input size, slope from the prior), 50 s + 5 s/GiB, spread x1.32',
    );
  });

  it('does not let a run get faster with more input', () => {
    const runs = [
      { inputBytes: 1 * GiB, seconds: 100 },
      { inputBytes: 2 * GiB, seconds: 90 },
      { inputBytes: 3 * GiB, seconds: 80 },
    ];
    expect(fitDurations(runs, DEFAULT_PRIOR, { priorWeight: 0 }).secondsPerGiB).toBe(0);
  });

  it('learns from the most recent runs only', () => {
    const old = history(300, { baseSeconds: 400, secondsPerGiB: 30 }, 3);
    const recent = history(200, truth, 4);
    const model = fitDurations([...old, ...recent], truth);
    expect(relativeError(model.baseSeconds, truth.baseSeconds)).toBeLessThan(0.1);
    expect(fitDurations([...old, ...recent], truth, { maxSamples: 500 }).baseSeconds).toBeGreaterThan(100);
  });

  it('never estimates less than a second', () => {
    const model = fitDurations([{ inputBytes: 0, seconds: 0.01 }], DEFAULT_PRIOR, { priorWeight: 0 });
    expect(estimateDuration(model, 0).medianSeconds).toBe(1);
    expect(estimateDuration(model, 0).seconds).toBeGreaterThanOrEqual(1);
  });
});

describe('median', () => {
  it('is the middle of the sorted values, or the mean of the two middles, with ties and any order', async () => {
    const { median } = await import('../../src/cost/estimator.ts');
    const { random } = await import('../../../../workloads/seeded-random.ts');
    const next = random(7);
    const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
    for (let trial = 0; trial < 500; trial += 1) {
      const length = 1 + Math.floor(next() * 60);
      // Few distinct values, so that many are tied; some runs sorted or reversed, as history comes.
      const values = Array.from({ length }, () => Math.floor(next() * 8) - 3);
      if (trial % 5 === 0) values.sort((a, b) => a - b);
      if (trial % 5 === 1) values.sort((a, b) => b - a);
      const s = sorted(values);
      const expected = length % 2 === 1 ? s[length >> 1] : (s[length / 2 - 1] + s[length / 2]) / 2;
      expect(median(values)).toBe(expected);
    }
    const values = [3, 1, 2];
    median(values);
    expect(values).toEqual([3, 1, 2]);
  });
});
