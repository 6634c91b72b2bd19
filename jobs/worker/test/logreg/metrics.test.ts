import { describe, expect, it } from 'vitest';
import { rocAuc } from '../../src/logreg/metrics.ts';
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
