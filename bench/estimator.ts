// The duration estimator's fit (`npm run bench -- estimator`): Theil–Sen over a rule's 200 most recent
// runs takes the median of 19,900 pair slopes, once per finished run in a simulation (the shipped week
// refits up to 3,000 times per cost policy) and once per refresh in the dispatcher. Against a baseline
// measured in the same process, turn about: the pair loop alone, which computes those slopes and
// which no fit can skip. Target: a fit costs at most 5 times its pair loop (2.9-3.8 measured here): the
// medians are a selection, linear in the slopes on average; a sort of the slopes would take about 19 times
// the loop in a typed array and about 70 with a comparator, as the fit took them before. That last is
// printed beside it, for scale.
import { fitDurations, type DurationSample } from '@pipeline/core';
import { normal, random } from '../workloads/seeded-random.ts';

const GiB = 1024 ** 3;
const RUNS = 200;
const ROUNDS = 7;
const FITS_PER_ROUND = 60;

function samples(seed: number): DurationSample[] {
  const next = random(seed);
  return Array.from({ length: RUNS }, () => {
    const inputBytes = Math.round(GiB * Math.exp(Math.log(1 / 64) * next()));
    return { inputBytes, seconds: (20 + 300 * (inputBytes / GiB)) * Math.exp(0.6 * normal(next)) };
  });
}

/** The slopes between every pair of runs, as fitDurations computes them. */
function pairSlopes(runs: readonly DurationSample[]): Float64Array {
  const xs = runs.map((run) => run.inputBytes / GiB);
  const slopes = new Float64Array((xs.length * (xs.length - 1)) / 2);
  let pairs = 0;
  for (let i = 0; i < xs.length; i += 1)
    for (let j = i + 1; j < xs.length; j += 1)
      if (xs[i] !== xs[j]) slopes[pairs++] = (runs[j].seconds - runs[i].seconds) / (xs[j] - xs[i]);
  return slopes.subarray(0, pairs);
}

/** The same slopes' median by a comparator sort, as the fit took it before. */
function sortedMedian(runs: readonly DurationSample[]): number {
  const slopes = [...pairSlopes(runs)].sort((a, b) => a - b);
  return slopes[slopes.length >> 1];
}

/** Milliseconds per call of `work`, over FITS_PER_ROUND calls on distinct histories. */
function timed(histories: DurationSample[][], work: (runs: DurationSample[]) => unknown): number {
  const started = performance.now();
  for (const runs of histories) work(runs);
  return (performance.now() - started) / histories.length;
}

export function benchEstimator(): boolean {
  const histories = Array.from({ length: FITS_PER_ROUND }, (_, i) => samples(100 + i));
  const [fit, loop, sorted]: number[][] = [[], [], []];
  // Warm-up, then rounds that take turns, so both meet the same noise of a shared machine.
  timed(histories, fitDurations);
  timed(histories, pairSlopes);
  for (let round = 0; round < ROUNDS; round += 1) {
    fit.push(timed(histories, fitDurations));
    loop.push(timed(histories, pairSlopes));
    sorted.push(timed(histories, sortedMedian));
  }
  const mid = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
  const ratio = mid(fit) / mid(loop);
  const ok = ratio <= 5;
  console.log(
    `estimator: a fit of ${RUNS} runs ${mid(fit).toFixed(2)} ms, its pair loop ${mid(loop).toFixed(2)} ms: ` +
      `${ratio.toFixed(2)}x (target <= 5x) ${ok ? 'ok' : 'MISSED'}; ` +
      `the pair loop with a comparator sort's median ${mid(sorted).toFixed(2)} ms (medians of ${ROUNDS} rounds)`,
  );
  return ok;
}
