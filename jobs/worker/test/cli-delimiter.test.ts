// The worker on files delimited by `;`, tab or `|`, detected from the header or named by DELIMITER:
// the real command in a child process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// The worker's main() in this process (cli.test.ts starts the real command too).
import { runWorkerInProcess as runWorker } from '../../../test/support/run-worker.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-delimiter-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const out = (...names: string[]) => path.join(dir, 'out', ...names);
const readOut = (name: string) => fs.readFileSync(out(name), 'utf8');
const model = () => JSON.parse(readOut('model.json'));
const logLines = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));

/** A table with a text column holding `d` inside quotes, two features and a 0/1 label, joined by `d`. */
function table(d: string): { text: string; rows: string[] } {
  const rows = Array.from({ length: 40 }, (_, i) => {
    const a = (i % 7) - 3;
    const b = ((i * 5) % 11) / 2;
    return [`"note ${i}${d} more"`, a, b, a + b / 2 > 0.5 ? 1 : 0].join(d);
  });
  return { text: `${['note', 'a', 'b', 'label'].join(d)}\n${rows.join('\n')}\n`, rows };
}

function input(content: string): string {
  const file = path.join(dir, 'in.csv');
  fs.writeFileSync(file, content);
  return file;
}

describe('pipeline-worker detects the delimiter from the header', () => {
  it.each([
    { name: 'semicolons', d: ';' },
    { name: 'tabs', d: '\t' },
    { name: 'pipes', d: '|' },
  ])(
    '$name: reads the table, logs and records the delimiter, and writes predictions with it',
    async ({ d }) => {
      const { text, rows } = table(d);
      const run = await runWorker(['--input', input(text), '--output', out()]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const m = model();
      expect(m).toMatchObject({ delimiter: d, delimiterChosenBy: 'detected', target: 'label' });
      expect(m.features).toEqual(['a', 'b']);
      expect(m.unusedColumns).toEqual([{ name: 'note', reason: 'not numeric' }]);
      expect(m.rows).toMatchObject({ read: 40, trained: 40, skipped: 0 });

      const name = d === '\t' ? 'tab' : `"${d}"`;
      expect(logLines(run.stdout)).toContainEqual({
        severity: 'INFO',
        message: `delimiter ${name}, detected from the header (4 columns)`,
        delimiter: d,
        delimiterChosenBy: 'detected',
      });

      const lines = readOut('predictions.csv').trimEnd().split('\n');
      expect(lines[0]).toBe(['note', 'a', 'b', 'label', 'prediction', 'probability'].join(d));
      rows.forEach((row, i) => {
        expect(lines[i + 1].startsWith(`${row}${d}`)).toBe(true);
        const [prediction, probability, ...rest] = lines[i + 1].slice(row.length + 1).split(d);
        expect(rest).toEqual([]);
        expect(prediction).toBe(Number(probability) > 0.5 ? '1' : '0');
      });
    },
  );

  it('quotes a class label that holds the delimiter in the predictions', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => `${i % 5};${i % 3};${i % 5 > 1 ? '"yes;sure"' : 'no'}`);
    const run = await runWorker(['--input', input(`x;y;label\n${rows.join('\n')}\n`), '--output', out()]);
    expect(run.code).toBe(0);
    expect(model().classes).toEqual(['no', 'yes;sure']);
    const lines = readOut('predictions.csv').trimEnd().split('\n');
    const suffixes = rows.map((row, i) => lines[i + 1].slice(row.length));
    for (const suffix of suffixes) expect(suffix).toMatch(/^;(no|"yes;sure");[\d.e-]+$/);
    expect(suffixes.filter((s) => s.startsWith(';"yes;sure";')).length).toBeGreaterThan(0);
  });
});

describe('DELIMITER names the delimiter', () => {
  // The names hold commas, so the header has more commas than semicolons: detection would take commas.
  const text = [
    'price,eur;qty,units;label,class',
    ...Array.from({ length: 30 }, (_, i) => `${i % 6}.5;${i % 4};${i % 6 > 2 ? 1 : 0}`),
  ].join('\n');

  it('is used instead of detecting, and is logged and recorded as given', async () => {
    const detected = await runWorker(['--input', input(text), '--output', out()]);
    expect(detected.code).toBe(4); // split at commas, the rows do not match the header

    const run = await runWorker(['--input', input(text), '--output', out()], { DELIMITER: ';' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(model()).toMatchObject({
      delimiter: ';',
      delimiterChosenBy: 'DELIMITER',
      features: ['price,eur', 'qty,units'],
      target: 'label,class',
      targetChosenBy: 'last column',
    });
    expect(logLines(run.stdout)).toContainEqual(
      expect.objectContaining({
        message: 'delimiter ";", as DELIMITER says (3 columns)',
        delimiterChosenBy: 'DELIMITER',
      }),
    );
    // Prediction columns are named apart from, and quoted like, the input's.
    expect(readOut('predictions.csv').split('\n')[0]).toBe(
      'price,eur;qty,units;label,class;prediction;probability',
    );
  });

  it.each<{ name: string; args: string[]; env: Record<string, string> }>([
    { name: '--delimiter tab', args: ['--delimiter', 'tab'], env: {} },
    { name: 'DELIMITER=\\t (backslash t)', args: [], env: { DELIMITER: '\\t' } },
    { name: 'DELIMITER as a literal tab', args: [], env: { DELIMITER: '\t' } },
  ])('$name', async ({ args, env }) => {
    const { text: tabbed } = table('\t');
    const run = await runWorker(['--input', input(tabbed), '--output', out(), ...args], env);
    expect(run.code).toBe(0);
    expect(model()).toMatchObject({ delimiter: '\t', delimiterChosenBy: 'DELIMITER', features: ['a', 'b'] });
  });

  it('a flag wins over the variable', async () => {
    const { text: piped } = table('|');
    const run = await runWorker(['--input', input(piped), '--output', out(), '--delimiter', '|'], {
      DELIMITER: ';',
    });
    expect(run.code).toBe(0);
    expect(model()).toMatchObject({ delimiter: '|', delimiterChosenBy: 'DELIMITER' });
  });
});
