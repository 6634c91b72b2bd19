import { describe, expect, it } from 'vitest';
import { macroAucOneVsRest, rocAuc } from '../../src/logreg/metrics.ts';
import { random } from '../../scripts/generate-sample.ts';

/** The definition, over every pair. */
function bruteForceAuc(pos: number[], neg: number[]): number {
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (pos.length * neg.length);
}

describe('rocAuc', () => {
  it.each([
    { pos: [0.9, 0.8], neg: [0.1, 0.2], auc: 1 },
    { pos: [0.1], neg: [0.9], auc: 0 },
    { pos: [0.5, 0.5], neg: [0.5], auc: 0.5 },
    { pos: [0.3, 0.7], neg: [0.3, 0.5], auc: 0.625 },
  ])('$pos vs $neg = $auc', ({ pos, neg, auc }) => {
    expect(rocAuc(Float64Array.from(pos), Float64Array.from(neg))).toBe(auc);
  });

  it('agrees with the pairwise definition on random scores with many ties', () => {
    const rand = random(3);
    for (let trial = 0; trial < 50; trial++) {
      const pos = Array.from({ length: 1 + Math.floor(rand() * 60) }, () => Math.round(rand() * 10) / 10);
      const neg = Array.from({ length: 1 + Math.floor(rand() * 60) }, () => Math.round(rand() * 8) / 10);
      expect(rocAuc(Float64Array.from(pos), Float64Array.from(neg))).toBeCloseTo(bruteForceAuc(pos, neg), 12);
    }
  });

  it('is undefined without both classes', () => {
    expect(rocAuc(Float64Array.from([0.1]), new Float64Array(0))).toBeUndefined();
  });
});

describe('macroAucOneVsRest', () => {
  it('is the mean over classes of the pairwise AUC of that class against the rest, unlabelled rows left out', () => {
    const rand = random(11);
    const k = 3;
    const rows = 120;
    const y = Int32Array.from({ length: rows }, (_, i) => (i % 10 === 9 ? -1 : Math.floor(rand() * k)));
    const probabilities = new Float64Array(rows * k);
    for (let i = 0; i < rows; i++) {
      const raw = Array.from(
        { length: k },
        (_, c) => Math.round((rand() + (y[i] === c ? 0.4 : 0)) * 10) / 10,
      );
      const total = raw.reduce((a, b) => a + b, 0);
      raw.forEach((r, c) => (probabilities[i * k + c] = r / total));
    }
    let expected = 0;
    for (let c = 0; c < k; c++) {
      const pos: number[] = [];
      const neg: number[] = [];
      for (let i = 0; i < rows; i++) {
        if (y[i] < 0) continue;
        (y[i] === c ? pos : neg).push(probabilities[i * k + c]);
      }
      expected += bruteForceAuc(pos, neg) / k;
    }
    expect(macroAucOneVsRest(y, rows, probabilities, k)).toBeCloseTo(expected, 12);
  });

  it('is 1 when each class always scores its own rows highest', () => {
    const y = Int32Array.from([0, 1, 2, 0, 1, 2]);
    const probabilities = Float64Array.from(
      Array.from(y).flatMap((label) => [0, 1, 2].map((c) => (c === label ? 0.8 : 0.1))),
    );
    expect(macroAucOneVsRest(y, 6, probabilities, 3)).toBe(1);
  });
});
