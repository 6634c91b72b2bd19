import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateStatements } from '../scripts/generate-sample.ts';
import { generateWine } from '../scripts/generate-wine.ts';

const data = (name: string) => fs.readFileSync(path.resolve(import.meta.dirname, '../data', name), 'utf8');

it('the committed sample is exactly what its generator makes from the fixed seed', () => {
  expect(generateStatements()).toBe(data('financial_statements.csv'));
});

describe('wine.csv (synthetic, in the shape of the UCI wine data)', () => {
  const text = data('wine.csv');
  const [header, ...rows] = text.trimEnd().split('\n');

  it('is exactly what its generator makes from the fixed seed', () => {
    expect(generateWine()).toBe(text);
  });

  it('has the UCI columns, 178 rows of cultivars 1, 2 and 3 (59, 71, 48), and integer proline last', () => {
    expect(header.split(',')).toEqual([
      'cultivar',
      'alcohol',
      'malic_acid',
      'ash',
      'alcalinity_of_ash',
      'magnesium',
      'total_phenols',
      'flavanoids',
      'nonflavanoid_phenols',
      'proanthocyanins',
      'color_intensity',
      'hue',
      'od280_od315_of_diluted_wines',
      'proline',
    ]);
    expect(rows).toHaveLength(178);
    const fields = rows.map((r) => r.split(','));
    const count = (k: string) => fields.filter((f) => f[0] === k).length;
    expect([count('1'), count('2'), count('3')]).toEqual([59, 71, 48]);
    for (const f of fields) {
      expect(f).toHaveLength(14);
      for (const value of f.slice(1)) expect(Number.isFinite(Number(value))).toBe(true);
      const proline = Number(f[13]);
      expect(Number.isInteger(proline)).toBe(true);
      expect(proline).toBeGreaterThanOrEqual(278);
      expect(proline).toBeLessThanOrEqual(1680);
    }
  });
});
