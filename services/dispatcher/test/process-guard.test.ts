// The process-level handlers (process-guard.ts), in a process of their own: a rejection nobody
// handled is logged at CRITICAL with the job it happened for, and the process goes on; an uncaught
// exception is logged the same way, and the process exits 1.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

const SRC = path.resolve(import.meta.dirname, '../src');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guard-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `body` in a new Node process with the guards installed; its exit code and JSON log lines. */
async function guarded(body: string): Promise<{ code: number | null; logs: Record<string, unknown>[] }> {
  const script = path.join(dir, `script-${Math.random().toString(36).slice(2)}.mjs`);
  const url = (file: string) => pathToFileURL(path.join(SRC, file)).href;
  fs.writeFileSync(
    script,
    [
      `import { createLogger } from '${url('logger.ts')}';`,
      `import { installProcessGuards } from '${url('process-guard.ts')}';`,
      `import { inJobContext } from '${url('job-context.ts')}';`,
      `const logger = createLogger();`,
      `installProcessGuards(logger);`,
      body,
    ].join('\n'),
  );
  const child = spawn(process.execPath, ['--import', LOOPBACK_GUARD, script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const logs = stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { code, logs };
}

describe('installProcessGuards', () => {
  it('logs an unhandled rejection at CRITICAL with its job, and keeps the process running', async () => {
    const { code, logs } = await guarded(`
      inJobContext({ jobId: 'job-1', object: 'in/a.csv#7' }, async () => {
        await null;
        Promise.reject(new Error('nobody waited for this'));
      });
      Promise.reject(new Error('outside any job'));
      setTimeout(() => logger.info('still running'), 100);
    `);
    expect(code).toBe(0);
    const critical = logs.filter((l) => l.severity === 'CRITICAL');
    expect(critical).toHaveLength(2);
    expect(critical.find((l) => l.jobId === 'job-1')).toMatchObject({
      object: 'in/a.csv#7',
      err: { message: 'nobody waited for this' },
      message: 'unhandled promise rejection; the dispatcher keeps running',
    });
    expect(critical.find((l) => l.jobId === undefined)).toMatchObject({
      err: { message: 'outside any job' },
    });
    expect(logs.at(-1)).toMatchObject({ severity: 'INFO', message: 'still running' });
  });

  it('logs an uncaught exception at CRITICAL with its job, and exits 1', async () => {
    const { code, logs } = await guarded(`
      inJobContext({ jobId: 'job-2' }, () => setTimeout(() => { throw new Error('thrown in a callback'); }, 10));
      setTimeout(() => logger.info('never'), 1000);
    `);
    expect(code).toBe(1);
    expect(logs).toEqual([
      expect.objectContaining({
        severity: 'CRITICAL',
        jobId: 'job-2',
        origin: 'uncaughtException',
        err: expect.objectContaining({ message: 'thrown in a callback' }),
        message: 'uncaught exception; the dispatcher exits, its state unknown',
      }),
    ]);
  });
});
