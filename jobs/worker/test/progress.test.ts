// Progress lines while a big input is read. The clock is injected: no test waits.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { progressMessage, ReadProgress } from '../src/io/progress.ts';
import { logLine } from '../src/log.ts';
import { runLogreg } from '../src/logreg/run.ts';
import { parseWorkerConfig } from '../src/config.ts';

/** A clock the test moves, and the lines logged, formatted as cli.ts writes them. */
function harness() {
  const clock = { ms: 0 };
  const lines: string[] = [];
  const log = (message: string, fields?: Record<string, unknown>) => lines.push(logLine(message, fields));
  return { clock, lines, log, now: () => clock.ms };
}

describe('ReadProgress', () => {
  it('logs a line each time the interval has passed, in the shape the dashboard parses, and a last one', () => {
    const { clock, lines, log, now } = harness();
    const progress = new ReadProgress(354_000_000, log, {
      minBytes: 64 * 1024 * 1024,
      intervalMs: 5000,
      now,
    });
    clock.ms = 4999;
    progress.update(100_000_000, 1_000_000);
    expect(lines).toEqual([]);
    clock.ms = 5000;
    progress.update(120_000_000, 1_200_000);
    clock.ms = 9999;
    progress.update(200_000_000, 2_000_000);
    clock.ms = 10_000;
    progress.update(240_000_000, 2_400_000);
    progress.finish(354_000_000, 3_540_000);
    expect(lines).toEqual([
      '{"severity":"INFO","message":"read 120.0 MB of 354.0 MB (33.9%), 1,200,000 rows","progress":{"bytesRead":120000000,"totalBytes":354000000,"rows":1200000}}\n',
      '{"severity":"INFO","message":"read 240.0 MB of 354.0 MB (67.8%), 2,400,000 rows","progress":{"bytesRead":240000000,"totalBytes":354000000,"rows":2400000}}\n',
      '{"severity":"INFO","message":"read 354.0 MB of 354.0 MB (100.0%), 3,540,000 rows","progress":{"bytesRead":354000000,"totalBytes":354000000,"rows":3540000,"done":true}}\n',
    ]);
  });

  it('says nothing for an input at or below the size', () => {
    const { clock, lines, log, now } = harness();
    const progress = new ReadProgress(1000, log, { minBytes: 1000, intervalMs: 10, now });
    clock.ms = 50;
    progress.update(500, 10);
    progress.finish(1000, 20);
    expect(lines).toEqual([]);
  });

  it('reports an input of unknown size, without totalBytes', () => {
    const { clock, lines, log, now } = harness();
    const progress = new ReadProgress(Number.NaN, log, { intervalMs: 5000, now });
    clock.ms = 5000;
    progress.update(2_500_000, 7);
    expect(lines).toEqual([
      '{"severity":"INFO","message":"read 2.5 MB, 7 rows","progress":{"bytesRead":2500000,"rows":7}}\n',
    ]);
  });

  it('formats a message for an empty input without dividing by zero', () => {
    expect(progressMessage(0, 0, 0)).toBe('read 0.0 MB of 0.0 MB (100.0%), 0 rows');
  });
});

describe('runLogreg with progress', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-progress-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports the bytes and rows read after each chunk that ends an interval, then the totals', async () => {
    // About 2.9 MB: three chunks of the local reader (1 MiB each).
    const rows = Array.from(
      { length: 400_000 },
      (_, i) => `${i % 97},${(i * 7) % 13},${(i % 97) + ((i * 7) % 13) > 55 ? 1 : 0}`,
    );
    const file = path.join(dir, 'in.csv');
    fs.writeFileSync(file, `a,b,label\n${rows.join('\n')}\n`);
    const size = fs.statSync(file).size;
    const { clock, lines, log } = harness();
    const config = parseWorkerConfig(['--input', file, '--output', path.join(dir, 'out')], {});
    // Each reading of the clock is 5 s later: every chunk ends an interval.
    await runLogreg(config, log, {
      progress: { minBytes: 0, intervalMs: 5000, now: () => (clock.ms += 5000) },
    });
    const progress = lines.map((l) => JSON.parse(l)).filter((l) => l.progress !== undefined);
    expect(Math.ceil(size / (1 << 20))).toBe(3);
    expect(progress.map((l) => l.progress.bytesRead)).toEqual([1 << 20, 2 << 20, size, size]);
    expect(progress.every((l) => l.progress.totalBytes === size)).toBe(true);
    const counted = progress.map((l) => l.progress.rows);
    expect(counted[0]).toBeGreaterThan(0);
    expect(counted[1]).toBeGreaterThan(counted[0]);
    expect(counted.slice(2)).toEqual([400_000, 400_000]);
    expect(progress.map((l) => l.progress.done)).toEqual([undefined, undefined, undefined, true]);
    // The last line comes before the input is reported loaded.
    const loaded = lines.findIndex((l) => l.includes('"message":"input loaded"'));
    expect(lines.findIndex((l) => l.includes('"done":true'))).toBeLessThan(loaded);
  });
});
