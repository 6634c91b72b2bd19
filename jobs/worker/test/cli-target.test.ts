// Which target the worker uses and why, and its refusal of a guessed target that is not a class:
// the real command in a child process, on the wine data and on small tables.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// The worker's main() in this process (cli.test.ts starts the real command too).
import { runWorkerInProcess as runWorker } from '../../../test/support/run-worker.ts';

const WINE = path.resolve(import.meta.dirname, '../data/wine.csv');
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-target-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const out = (...names: string[]) => path.join(dir, 'out', ...names);
const model = () => JSON.parse(fs.readFileSync(out('model.json'), 'utf8'));
const logLines = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));

function input(lines: string[]): string {
  const file = path.join(dir, 'in.csv');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** Rows `x,<target>` with x rising with the target's rank, so any target gives a learnable model. */
function rowsFor(targets: readonly string[]): string[] {
  return targets.map((t, i) => `${(i * 7) % 10},${targets.indexOf(t) + ((i * 3) % 5) / 10},${t}`);
}

describe('the wine data', () => {
  const wine = fs.readFileSync(WINE, 'utf8').trimEnd().split('\n');
  const prolines = new Set(wine.slice(1).map((l) => l.split(',').at(-1)));

  it('without TARGET_COLUMN: exit 4, the last column refused as continuous, TARGET_COLUMN named', async () => {
    const run = await runWorker(['--input', WINE, '--output', out()]);
    expect(run.code).toBe(4);
    expect(run.stderr).toBe(
      `pipeline-worker: the last column "proline" looks continuous (${prolines.size} distinct values in 178 rows), ` +
        'not a class: name the target column with TARGET_COLUMN (columns: cultivar, alcohol, malic_acid, ash, ' +
        'alcalinity_of_ash, magnesium, total_phenols, flavanoids, ... (14 columns); columns that could be the ' +
        'class: cultivar)\n',
    );
    expect(fs.existsSync(out('_SUCCESS'))).toBe(false);
    expect(logLines(run.stdout)).toContainEqual({
      severity: 'INFO',
      message: 'target column "proline": the last column, since TARGET_COLUMN was not set',
      target: 'proline',
      targetChosenBy: 'last column',
    });
  });

  it('with TARGET_COLUMN=cultivar: three classes, learned, and the summary in model.json', async () => {
    const run = await runWorker(['--input', WINE, '--output', out()], { TARGET_COLUMN: 'cultivar' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const m = model();
    expect(m).toMatchObject({
      target: 'cultivar',
      targetChosenBy: 'TARGET_COLUMN',
      delimiter: ',',
      delimiterChosenBy: 'detected',
      classes: ['1', '2', '3'],
      classCounts: { 1: 59, 2: 71, 3: 48 },
      probability: 'one column per class',
      rows: { read: 178, trained: 178, predicted: 178, skipped: 0, predictOnly: 0 },
      skippedRows: [],
      warnings: [],
    });
    expect(m.features).toHaveLength(13);
    expect(m.features.at(-1)).toBe('proline');
    expect(m.metrics.accuracy).toBeGreaterThan(0.95);
    expect(m.metrics.macroAucOneVsRest).toBeGreaterThan(0.95);
    expect(m.metrics.auc).toBeUndefined();
    expect(logLines(run.stdout)).toContainEqual({
      severity: 'INFO',
      message: 'target column "cultivar": named by TARGET_COLUMN',
      target: 'cultivar',
      targetChosenBy: 'TARGET_COLUMN',
    });
  });
});

describe('a guessed target', () => {
  it('is the column named label when there is one, and model.json says so', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => `${i % 2},${i % 5},${(i * 13) % 100}`);
    const run = await runWorker([
      '--input',
      input(['label,x,score', ...rows]),
      '--output',
      out(),
      '--exclude',
      'score',
    ]);
    expect(run.code).toBe(0);
    expect(model()).toMatchObject({ target: 'label', targetChosenBy: 'label column' });
  });

  it('refuses a label column that looks like identifiers', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => `${i % 4},id-${i},${i % 2}`);
    const run = await runWorker(['--input', input(['x,label,flag', ...rows]), '--output', out()]);
    expect(run.code).toBe(4);
    expect(run.stderr).toBe(
      'pipeline-worker: the column "label" (the target when TARGET_COLUMN is not set) looks like an identifier ' +
        'or free text (30 distinct values in 30 rows), not a class: name the target column with TARGET_COLUMN ' +
        '(columns: x, label, flag; columns that could be the class: x, flag)\n',
    );
  });

  it('with a few fractional values is a class', async () => {
    const targets = Array.from({ length: 30 }, (_, i) => ['0.5', '1.5', '2.5'][i % 3]);
    const run = await runWorker(['--input', input(['a,b,dose', ...rowsFor(targets)]), '--output', out()]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(model()).toMatchObject({
      target: 'dose',
      targetChosenBy: 'last column',
      classes: ['0.5', '1.5', '2.5'],
    });
  });
});

describe('a target named with TARGET_COLUMN', () => {
  it('is used as asked even when it looks continuous, with few values', async () => {
    const targets = Array.from({ length: 40 }, (_, i) => ['0.25', '0.75', '1.25', '1.75'][i % 4]);
    const run = await runWorker(['--input', input(['a,b,dose', ...rowsFor(targets)]), '--output', out()], {
      TARGET_COLUMN: 'dose',
    });
    expect(run.code).toBe(0);
    expect(model()).toMatchObject({
      target: 'dose',
      classes: ['0.25', '0.75', '1.25', '1.75'],
      warnings: [],
    });
  });

  it('is used as asked with very many classes, with a warning logged and recorded', async () => {
    // 30 distinct fractional values, each twice: refused if guessed, accepted if named.
    const targets = Array.from({ length: 60 }, (_, i) => `${i % 30}.5`);
    const file = input(['a,b,score', ...rowsFor(targets)]);
    expect((await runWorker(['--input', file, '--output', out()])).code).toBe(4);

    const run = await runWorker(['--input', file, '--output', out(), '--target', 'score']);
    expect(run.code).toBe(0);
    const warning =
      'the target "score" has 30 classes: each gets its own coefficients, and a class with few rows is barely ' +
      'learned; if "score" is a measurement rather than a class, logistic regression is not the model for it';
    expect(logLines(run.stdout)).toContainEqual({ severity: 'WARNING', message: warning });
    expect(model()).toMatchObject({ target: 'score', targetChosenBy: 'TARGET_COLUMN', warnings: [warning] });
    expect(model().classes).toHaveLength(30);
  });
});
