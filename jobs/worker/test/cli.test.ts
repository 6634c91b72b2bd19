import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runWorker, runWorkerInProcess } from '../../../test/support/run-worker.ts';

// `pipeline-worker` as a user runs it: a few cases start the real command (bin/pipeline-worker.js) in
// a process of its own; the others call its main() in this process with the same arguments and
// environment, and read what it wrote to stdout and stderr.

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
  // Each reason says what was found and what to change.
  it.each([
    {
      name: 'an empty file',
      content: '',
      reason:
        'the input is empty: no header row (the first line must name the columns, and data rows follow it)',
    },
    {
      name: 'a header only',
      content: 'a,b,label\n',
      reason: 'the input has a header but no data rows (columns: a, b, label): add rows below the header',
    },
    {
      name: 'one class only',
      content: 'a,label\n1,x\n2,x\n3,x\n',
      reason:
        'the target "label" has one class only ("x"): a model needs training rows of at least two classes; ' +
        'if "label" is not the column to predict, name the target with TARGET_COLUMN',
    },
    {
      name: 'no numeric feature',
      content: 'name,label\nann,0\nbob,1\n',
      reason:
        'no numeric feature columns besides the target "label" (name: not numeric, e.g. "ann"): the features ' +
        'must be columns of numbers, written with a dot for decimals (1.5); if "label" is not the target, ' +
        'name it with TARGET_COLUMN',
    },
    {
      name: 'decimal commas in a semicolon file',
      content: 'a;b;label\n1,5;2,5;0\n1,5;3,5;1\n',
      reason:
        'no numeric feature columns besides the target "label" (a: not numeric, e.g. "1,5"; b: not numeric, ' +
        'e.g. "2,5"): the features must be columns of numbers, written with a dot for decimals (1.5); values ' +
        'like "1,5" have a decimal comma, which is not read as a number; if "label" is not the target, name ' +
        'it with TARGET_COLUMN',
    },
    {
      name: 'every target empty',
      content: 'a,label\n1,\n2,\n',
      reason:
        'no trainable rows: of 2 rows, 2 with an empty "label": rows are trained on only when "label" has a ' +
        'value; if it is not the target, name the target with TARGET_COLUMN',
    },
    {
      name: 'every feature value missing or text',
      content: 'a,b,label\n1,,0\n2,x,1\n3,4,\n5,6,\n',
      reason:
        'no trainable rows: of 4 rows, 2 skipped (first: line 2, column "b" is empty) and 2 with an empty ' +
        '"label": every feature must be a number in a training row: fill the values in, or leave the column ' +
        'out with EXCLUDE_COLUMNS; rows are trained on only when "label" has a value; if it is not the ' +
        'target, name the target with TARGET_COLUMN',
    },
    {
      name: 'a header with one column and none of the delimiters',
      content: 'a b label\n1 2 0\n',
      reason:
        'the header has one column, so there are no features (it starts "a b label", and no , ; | or tab ' +
        'separates names outside quotes): check the file is a CSV with a header row of column names ' +
        'separated by one of , ; | tab, or set DELIMITER to the one it uses',
    },
    {
      name: 'rows that do not split like the header',
      content: 'a,b,label\n1;2;0\n3;4;1\n',
      reason:
        "none of the 2 rows splits into the header's 3 fields (first: line 2, expected 3 fields, found 1): " +
        'if the rows use another delimiter than the header\'s ",", make them agree; otherwise fix the rows\' ' +
        'quoting (a field that holds the delimiter, a quote or a line break is enclosed in double quotes, ' +
        'with any quote inside doubled)',
    },
    {
      name: 'a header with an unclosed quote',
      content: '"a,b,label\n1,2,0\n',
      reason:
        'the header row is malformed: quoted field 1 is never closed (it starts "\\"a,b,label\\n1,2,0\\n"): ' +
        'fix its quoting (a field that holds the delimiter, a quote or a line break is enclosed in double ' +
        'quotes, with any quote inside doubled)',
    },
    {
      name: 'a column named twice',
      content: 'a,a,label\n1,2,0\n',
      reason: 'the header names column "a" twice: give each column its own name (columns: a, a, label)',
    },
  ])('$name: exit 4, one line on stderr, no _SUCCESS', async ({ content, reason }) => {
    const file = input('in.csv', content);
    const run = await runWorkerInProcess(['--input', file, '--output', out()]);
    expect(run.code).toBe(4);
    expect(run.stderr).toBe(`pipeline-worker: ${reason}\n`);
    expect(fs.existsSync(out('_SUCCESS'))).toBe(false);
  });

  it('a DELIMITER that leaves the header one column: says so, and which delimiter the header has', async () => {
    const file = input('in.csv', ['a,b,label', ...goodRows()].join('\n'));
    const run = await runWorkerInProcess(['--input', file, '--output', out()], { DELIMITER: ';' });
    expect(run.code).toBe(4);
    expect(run.stderr).toBe(
      'pipeline-worker: the header has one column when split at ";" as DELIMITER says, so there are no ' +
        'features (it starts "a,b,label"; its names look separated by ","): set DELIMITER to the character ' +
        'between its names (one of , ; | tab), or leave it unset to detect it\n',
    );
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
      reason:
        'target column "missing" is not in the header: set TARGET_COLUMN (or --target) to one of its ' +
        'columns: a, b, label',
    },
    {
      name: 'a target in the wrong case',
      args: ['--target', 'Label'],
      reason:
        'target column "Label" is not in the header (did you mean "label"?): set TARGET_COLUMN (or ' +
        '--target) to one of its columns: a, b, label',
    },
    {
      name: 'an unknown excluded column',
      args: ['--exclude', 'zzz'],
      reason:
        'excluded column "zzz" is not in the header: EXCLUDE_COLUMNS (or --exclude) takes comma-separated ' +
        'names of its columns: a, b, label',
    },
    {
      name: 'an unknown delimiter',
      args: ['--delimiter', 'x'],
      reason:
        '--delimiter / DELIMITER must be one of , ; | tab (or \\t for tab), got "x"; leave it unset to ' +
        'detect the delimiter from the header',
    },
    {
      name: 'a non-positive C',
      args: ['--c', '0'],
      reason: /--c \/ REGULARIZATION_C must be a positive number/,
    },
    { name: 'an unknown flag', args: ['--bogus', 'x'], reason: /Unknown option '--bogus'/ },
  ])('$name: exit 2 with the usage', async ({ args, reason }) => {
    const file = input('in.csv', ['a,b,label', ...goodRows()].join('\n'));
    const run = await runWorkerInProcess(['--input', file, '--output', out(), ...args]);
    expect(run.code).toBe(2);
    const first = run.stderr.split('\n')[0];
    if (typeof reason === 'string') expect(first).toBe(`pipeline-worker: ${reason}`);
    else expect(first).toMatch(reason);
    expect(run.stderr).toContain('usage: pipeline-worker');
  });

  it('skips rows with the wrong field count: left out of predictions.csv, listed with line numbers', async () => {
    const rows = goodRows();
    rows.splice(3, 0, '1,2');
    rows.splice(10, 0, '1,2,0,9');
    const run = await runWorkerInProcess([
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
    const run = await runWorkerInProcess([
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
    const run = await runWorkerInProcess(['--input', input('in.csv', text), '--output', out()]);
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
    await runWorkerInProcess(['--input', input('lf.csv', lf), '--output', out()]);
    const expected = model().coefficients;
    const lfPredictions = readOut('predictions.csv')
      .split('\n')
      .map((l) => l.split(',').slice(-2).join(','));
    const bomCrlf = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(lf.replaceAll('\n', '\r\n')),
    ]);
    const run = await runWorkerInProcess(['--input', input('crlf.csv', bomCrlf), '--output', out()]);
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
    const run = await runWorkerInProcess(['--input', input('in.csv', 'a,label\n1,x\n'), '--output', out()]);
    expect(run.code).toBe(4);
    expect(fs.readdirSync(out())).toEqual([]);
  });

  it('names the prediction columns apart from input columns of the same name', async () => {
    const rows = goodRows().map((r) => `${r},keep`);
    const run = await runWorkerInProcess([
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
    const ok = await runWorkerInProcess(['--input', file, '--output', out()], {
      INPUT_GENERATION: generation,
    });
    expect(ok.code).toBe(0);
    expect(JSON.parse(readOut('_SUCCESS')).inputGeneration).toBe(generation);
    const stale = await runWorkerInProcess(['--input', file, '--output', out()], {
      INPUT_GENERATION: '12345',
    });
    expect(stale.code).toBe(3);
    expect(stale.stderr).toBe(
      `pipeline-worker: input ${file} is no longer generation 12345: it was written again\n`,
    );
  });
});
