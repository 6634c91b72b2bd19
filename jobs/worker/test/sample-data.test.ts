import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { generateStatements } from '../scripts/generate-sample.ts';

it('the committed sample is exactly what its generator makes from the fixed seed', () => {
  const committed = fs.readFileSync(
    path.resolve(import.meta.dirname, '../data/financial_statements.csv'),
    'utf8',
  );
  expect(generateStatements()).toBe(committed);
});
