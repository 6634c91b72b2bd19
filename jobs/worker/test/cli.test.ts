import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runWorker } from '../../../test/support/run-worker.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../data/financial_statements.csv');
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-cli-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function input(name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

const out = (...names: string[]) => path.join(dir, 'out', ...names);
const readOut = (name: string) => fs.readFileSync(out(name), 'utf8');
const model = () => JSON.parse(readOut('model.json'));

/** 40 rows of two features and a label that depends on them, both classes present. */
function goodRows(): string[] {
  return Array.from(
    { length: 40 },
    (_, i) => `${(i % 7) - 3},${((i * 5) % 11) / 2},${(i % 7) + ((i * 5) % 11) / 4 > 4 ? 1 : 0}`,
  );
}

describe('pipeline-worker on the sample data', () => {
  it('writes every row in input order with its prediction, the model, and _SUCCESS', async () => {
    const run = await runWorker(['--input', SAMPLE, '--output', out(), '--exclude', 'fiscal_year'], {
      JOB_ID: 'job-1',
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const inputLines = fs.readFileSync(SAMPLE, 'utf8').trimEnd().split('\n');
    const lines = readOut('predictions.csv').trimEnd().split('\n');
    expect(lines).toHaveLength(inputLines.length);
    expect(lines[0]).toBe(`${inputLines[0]},prediction,probability`);
    lines.forEach((line, i) => expect(line.startsWith(`${inputLines[i]},`)).toBe(true));
    for (const line of lines.slice(1)) {
      const [prediction, probability] = line.split(',').slice(-2);
      expect(['0', '1']).toContain(prediction);
      expect(prediction).toBe(Number(probability) > 0.5 ? '1' : '0');
    }
    const m = model();
    expect(m.target).toBe('distress_next_year');
    expect(m.classes).toEqual(['0', '1']);
    expect(m.unusedColumns).toEqual([
      { name: 'company_id', reason: 'not numeric' },
      { name: 'sector', reason: 'not numeric' },
      { name: 'fiscal_year', reason: 'excluded' },
    ]);
    expect(m.rows).toEqual({ read: 3000, trained: 2400, predicted: 3000, skipped: 0, predictOnly: 600 });
    expect(m.optimizer.converged).toBe(true);
    expect(m.metrics.accuracy).toBeGreaterThan(0.9);
    expect(m.metrics.auc).toBeGreaterThan(0.85);
    expect(Object.keys(m.seconds)).toEqual(['read', 'fit', 'predict', 'write', 'total']);
    const success = JSON.parse(readOut('_SUCCESS'));
    expect(success).toMatchObject({ jobId: 'job-1', attempt: 1, input: SAMPLE });
    expect(fs.readdirSync(out()).sort()).toEqual(['_SUCCESS', 'model.json', 'predictions.csv']);
  });

  it('takes its settings from the environment of the container', async () => {
    const run = await runWorker([], {
      INPUT_URI: SAMPLE,
      OUTPUT_URI: out(),
      TASK: 'logreg',
      JOB_ID: 'job-env',
      ATTEMPT: '2',
      TARGET_COLUMN: 'distress_next_year',
      EXCLUDE_COLUMNS: 'fiscal_year,cash',
      REGULARIZATION_C: '0.5',
    });
    expect(run.code).toBe(0);
    const m = model();
    expect(m).toMatchObject({ jobId: 'job-env', attempt: 2, c: 0.5 });
    expect(m.features).not.toContain('cash');
  });
});

describe('pipeline-worker on bad input', () => {
  it.each([
    { name: 'an empty file', content: '', code: 4, reason: 'the input is empty: no header row' },
    {
      name: 'a header only',
      content: 'a,b,label\n',
      code: 4,
      reason: 'the input has a header but no data rows',
    },
    {
      name: 'one class only',
      content: 'a,label\n1,x\n2,x\n3,x\n',
      code: 4,
      reason: 'the target "label" has one class only ("x")',
    },
    {
      name: 'no numeric feature',
      content: 'name,label\nann,0\nbob,1\n',
      code: 4,
      reason: 'no numeric feature columns besides the target',
    },
    {
      name: 'every target empty',
      content: 'a,label\n1,\n2,\n',
      code: 4,
      reason: 'no trainable rows: every row was skipped or has an empty "label"',
    },
  ])('$name: exit $code, one line on stderr, no _SUCCESS', async ({ content, code, reason }) => {
    const file = input('in.csv', content);
    const run = await runWorker(['--input', file, '--output', out()]);
    expect(run.code).toBe(code);
    expect(run.stderr).toBe(`pipeline-worker: ${reason}\n`);
    expect(fs.existsSync(out('_SUCCESS'))).toBe(false);
  });

  it('a missing file: exit 3 and the path in the reason', async () => {
    const run = await runWorker(['--input', path.join(dir, 'nope.csv'), '--output', out()]);
    expect(run.code).toBe(3);
    expect(run.stderr).toBe(
      `pipeline-worker: cannot read input ${path.join(dir, 'nope.csv')}: no such file\n`,
    );
  });

  it.each([
    {
      name: 'an unknown target',
      args: ['--target', 'missing'],
      reason: /target column "missing" is not in the header/,
    },
    {
      name: 'an unknown excluded column',
      args: ['--exclude', 'zzz'],
      reason: /excluded column "zzz" is not in the header/,
    },
    {
      name: 'a non-positive C',
      args: ['--c', '0'],
      reason: /--c \/ REGULARIZATION_C must be a positive number/,
    },
    { name: 'an unknown flag', args: ['--bogus', 'x'], reason: /Unknown option '--bogus'/ },
  ])('$name: exit 2 with the usage', async ({ args, reason }) => {
    const file = input('in.csv', ['a,b,label', ...goodRows()].join('\n'));
    const run = await runWorker(['--input', file, '--output', out(), ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toMatch(reason);
    expect(run.stderr).toContain('usage: pipeline-worker');
  });

  it('skips rows with the wrong field count: left out of predictions.csv, listed with line numbers', async () => {
    const rows = goodRows();
    rows.splice(3, 0, '1,2');
    rows.splice(10, 0, '1,2,0,9');
    const run = await runWorker([
      '--input',
      input('in.csv', ['a,b,label', ...rows].join('\n')),
      '--output',
      out(),
    ]);
    expect(run.code).toBe(0);
    const m = model();
    expect(m.rows).toMatchObject({ read: 42, trained: 40, predicted: 40, skipped: 2 });
    expect(m.skippedRows).toEqual([
      { line: 5, reason: 'expected 3 fields, found 2' },
      { line: 12, reason: 'expected 3 fields, found 4' },
    ]);
    expect(readOut('predictions.csv').trimEnd().split('\n')).toHaveLength(41);
  });

  it('skips a row with text in a numeric column, never reading it as 0, and keeps its place', async () => {
    const rows = goodRows();
    rows[5] = 'abc,1.5,1';
    const run = await runWorker([
      '--input',
      input('in.csv', ['a,b,label', ...rows].join('\n')),
      '--output',
      out(),
    ]);
    expect(run.code).toBe(0);
    const m = model();
    expect(m.rows).toMatchObject({ read: 40, trained: 39, predicted: 39, skipped: 1 });
    expect(m.skippedRows).toEqual([{ line: 7, reason: 'column "a" is not a number: "abc"' }]);
    const lines = readOut('predictions.csv').trimEnd().split('\n');
    expect(lines).toHaveLength(41);
    expect(lines[6]).toBe('abc,1.5,1,,');
  });

  it('carries quoted fields with commas and line breaks through unchanged, and reads quoted numbers', async () => {
    const rows = goodRows().map(
      (r, i) => `"note ${i}, with ""quotes""\nand a second line",${r.replace(/^(-?[\d.]+)/, '"$1"')}`,
    );
    const text = ['comment,a,b,label', ...rows].join('\r\n');
    const run = await runWorker(['--input', input('in.csv', text), '--output', out()]);
    expect(run.code).toBe(0);
    const m = model();
    expect(m.features).toEqual(['a', 'b']);
    expect(m.unusedColumns).toEqual([{ name: 'comment', reason: 'not numeric' }]);
    expect(m.rows.trained).toBe(40);
    const predictions = readOut('predictions.csv');
    expect(predictions.startsWith('comment,a,b,label,prediction,probability\n')).toBe(true);
    expect(predictions).toContain(`${rows[0]},`);
  });

  it('reads a CRLF file with a UTF-8 byte order mark as the same data', async () => {
    const lf = ['a,b,label', ...goodRows()].join('\n');
    await runWorker(['--input', input('lf.csv', lf), '--output', out()]);
    const expected = model().coefficients;
    const lfPredictions = readOut('predictions.csv')
      .split('\n')
      .map((l) => l.split(',').slice(-2).join(','));
    const bomCrlf = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(lf.replaceAll('\n', '\r\n')),
    ]);
    const run = await runWorker(['--input', input('crlf.csv', bomCrlf), '--output', out()]);
    expect(run.code).toBe(0);
    expect(model().features).toEqual(['a', 'b']);
    expect(model().coefficients).toEqual(expected);
    const predictions = readOut('predictions.csv');
    expect(predictions.startsWith('a,b,label,prediction,probability\n')).toBe(true);
    expect(predictions.split('\n').map((l) => l.split(',').slice(-2).join(','))).toEqual(lfPredictions);
  });

  it('removes a stale _SUCCESS first, so a failed run leaves none, and leaves no partial files', async () => {
    fs.mkdirSync(out(), { recursive: true });
    fs.writeFileSync(out('_SUCCESS'), '{"from":"an earlier run"}');
    const run = await runWorker(['--input', input('in.csv', 'a,label\n1,x\n'), '--output', out()]);
    expect(run.code).toBe(4);
    expect(fs.readdirSync(out())).toEqual([]);
  });

  it('names the prediction columns apart from input columns of the same name', async () => {
    const rows = goodRows().map((r) => `${r},keep`);
    const run = await runWorker([
      '--input',
      input('in.csv', ['a,b,label,prediction', ...rows].join('\n')),
      '--output',
      out(),
      '--target',
      'label',
    ]);
    expect(run.code).toBe(0);
    expect(readOut('predictions.csv').split('\n')[0]).toBe('a,b,label,prediction,prediction_2,probability');
  });
});

describe('pipeline-worker and local generations', () => {
  it('reads a local file at the generation it was given (its modification time in ns), or refuses', async () => {
    const file = input('in.csv', ['a,b,label', ...goodRows()].join('\n'));
    const generation = fs.statSync(file, { bigint: true }).mtimeNs.toString();
    const ok = await runWorker(['--input', file, '--output', out()], { INPUT_GENERATION: generation });
    expect(ok.code).toBe(0);
    expect(JSON.parse(readOut('_SUCCESS')).inputGeneration).toBe(generation);
    const stale = await runWorker(['--input', file, '--output', out()], { INPUT_GENERATION: '12345' });
    expect(stale.code).toBe(3);
    expect(stale.stderr).toBe(
      `pipeline-worker: input ${file} is no longer generation 12345: it was written again\n`,
    );
  });
});
