// Worker benchmark: 1,000,000 rows x 20 numeric features (fixed seed), the whole run (parse, fit,
// predict, write) in a child process, against a baseline measured in the same script: reading the same
// file and counting its lines. Reports rows per second, peak RSS, and the ratios; exits non-zero when a
// target is missed (>= 200,000 rows/s; peak RSS <= 2 x the numeric matrix + 150 MB).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { random, normal } from '../jobs/worker/scripts/generate-sample.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const FEATURES = 20;
const SEED = 42;
const MiB = 1024 * 1024;
const root = path.resolve(import.meta.dirname, '..');
const workDir = path.join(root, '.bench');

function generate(file: string): void {
  const rand = random(SEED);
  const gauss = normal(rand);
  const truth = Array.from({ length: FEATURES }, () => gauss());
  const fd = fs.openSync(file, 'w');
  const header = [...Array.from({ length: FEATURES }, (_, j) => `x${j + 1}`), 'label'].join(',');
  let buffer = `${header}\n`;
  const row = new Array<string>(FEATURES + 1);
  for (let i = 0; i < ROWS; i++) {
    let z = 0.3;
    for (let j = 0; j < FEATURES; j++) {
      const x = gauss() * (1 + j / 10) + j;
      z += (truth[j] * (x - j)) / (1 + j / 10);
      row[j] = x.toFixed(6);
    }
    row[FEATURES] = rand() < 1 / (1 + Math.exp(-z)) ? '1' : '0';
    buffer += `${row.join(',')}\n`;
    if (buffer.length > 4 * MiB) {
      fs.writeSync(fd, buffer);
      buffer = '';
    }
  }
  fs.writeSync(fd, buffer);
  fs.closeSync(fd);
}

function baselineSeconds(file: string): number {
  const started = performance.now();
  const fd = fs.openSync(file, 'r');
  const chunk = Buffer.allocUnsafe(MiB);
  let lines = 0;
  for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0;) {
    for (let at = chunk.indexOf(10, 0); at >= 0 && at < n; at = chunk.indexOf(10, at + 1)) lines++;
  }
  fs.closeSync(fd);
  if (lines !== ROWS + 1) throw new Error(`baseline counted ${lines} lines`);
  return (performance.now() - started) / 1000;
}

export function benchWorker(): boolean {
  fs.mkdirSync(workDir, { recursive: true });
  const input = path.join(workDir, `logreg-${ROWS}x${FEATURES}-seed${SEED}.csv`);
  if (!fs.existsSync(input)) {
    process.stdout.write(`generating ${input} ...\n`);
    generate(`${input}.tmp`);
    fs.renameSync(`${input}.tmp`, input);
  }
  const output = path.join(workDir, 'logreg-out');
  fs.rmSync(output, { recursive: true, force: true });
  const bytes = fs.statSync(input).size;

  baselineSeconds(input); // warm the page cache for both
  const baseline = baselineSeconds(input);
  const started = performance.now();
  const run = spawnSync(
    process.execPath,
    [path.join(root, 'jobs/worker/bin/pipeline-worker.js'), '--input', input, '--output', output],
    {
      encoding: 'utf8',
      env: { ...process.env, METADATA_SERVER_DETECTION: 'none' },
    },
  );
  const seconds = (performance.now() - started) / 1000;
  if (run.status !== 0) throw new Error(`worker failed (${run.status}): ${run.stderr}`);
  const model = JSON.parse(fs.readFileSync(path.join(output, 'model.json'), 'utf8'));
  if (!fs.existsSync(path.join(output, '_SUCCESS'))) throw new Error('no _SUCCESS');

  const rowsPerSecond = ROWS / seconds;
  const matrixBytes = 8 * ROWS * FEATURES;
  const rssLimit = 2 * matrixBytes + 150 * MiB;
  const peak = model.peakRssBytes as number;
  const phases = Object.entries(model.seconds as Record<string, number>)
    .map(([k, v]) => `${k} ${v.toFixed(2)}s`)
    .join(', ');
  const rowsOk = rowsPerSecond >= 200_000;
  const rssOk = peak <= rssLimit;
  process.stdout.write(
    [
      `worker logreg: ${ROWS} rows x ${FEATURES} features, ${(bytes / MiB).toFixed(0)} MiB CSV`,
      `  end to end      ${seconds.toFixed(2)} s = ${Math.round(rowsPerSecond).toLocaleString('en')} rows/s (target >= 200,000) ${rowsOk ? 'ok' : 'MISSED'}`,
      `  phases          ${phases}; optimizer ${model.optimizer.iterations} iterations, ${model.optimizer.evaluations} passes, converged ${model.optimizer.converged}`,
      `  baseline        read + count lines ${baseline.toFixed(2)} s; whole run = ${(seconds / baseline).toFixed(1)}x the baseline`,
      `  peak RSS        ${(peak / MiB).toFixed(0)} MiB = ${(peak / matrixBytes).toFixed(2)}x the ${(matrixBytes / MiB).toFixed(0)} MiB matrix (limit ${(rssLimit / MiB).toFixed(0)} MiB) ${rssOk ? 'ok' : 'MISSED'}`,
      '',
    ].join('\n'),
  );
  return rowsOk && rssOk;
}
