// On Cloud Run the worker uploads its own stdout and stderr to LOGS_URI: the real command in a child
// process, @google-cloud/storage inside it talking to the loopback Cloud Storage double.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startFakeGcs, type FakeGcs } from '../../../test/support/fake-gcs.ts';
import { LOOPBACK_GUARD, runWorker, WORKER_BIN } from '../../../test/support/run-worker.ts';

// Small on purpose: the log is what is tested, not the model.
const SAMPLE = [
  'x1,x2,label',
  ...Array.from({ length: 40 }, (_, i) => `${i % 7},${(i * 3) % 5},${i % 7 > 3 ? 1 : 0}`),
].join('\n');
const INPUT_URI = 'gs://in-bucket/data/q1.csv';
const OUTPUT_URI = 'gs://out-bucket/data/q1.csv/';
const LOG_NAME = 'data/q1.csv/logs/attempt-1.log';
const LOGS_URI = `gs://out-bucket/${LOG_NAME}`;

let gcs: FakeGcs;
let dir: string;
beforeEach(async () => {
  gcs = await startFakeGcs();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-logs-'));
});
afterEach(async () => {
  await gcs.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const baseEnv = () => ({
  INPUT_URI,
  OUTPUT_URI,
  JOB_ID: 'job-1',
  STORAGE_EMULATOR_HOST: gcs.url,
});
const logText = () => gcs.get('out-bucket', LOG_NAME)?.body.toString('utf8');
const logUploads = () =>
  gcs.requests.filter((r) => r.method === 'POST' && r.url.includes(encodeURIComponent(LOG_NAME)));

describe('pipeline-worker with LOGS_URI', () => {
  it('uploads what it wrote on stdout to LOGS_URI before it ends', async () => {
    gcs.put('in-bucket', 'data/q1.csv', SAMPLE);
    const run = await runWorker([], { ...baseEnv(), LOGS_URI });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('"message":"done"');
    expect(logText()).toBe(run.stdout);
    expect(gcs.get('out-bucket', LOG_NAME)?.contentType).toBe('text/plain; charset=utf-8');
  });

  it('uploads its stderr too when the task fails', async () => {
    const run = await runWorker([], { ...baseEnv(), LOGS_URI }); // no input object
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('pipeline-worker: cannot read input gs://in-bucket/data/q1.csv');
    expect(logText()).toBe(run.stderr);
  });

  it('uploads every LOGS_UPLOAD_SECONDS while it runs, and once more when SIGTERM stops it', async () => {
    gcs.put('in-bucket', 'data/q1.csv', SAMPLE);
    const release = gcs.holdMedia(); // the worker waits for its input's bytes
    const child = spawn(process.execPath, ['--import', LOOPBACK_GUARD, WORKER_BIN], {
      env: {
        PATH: process.env.PATH ?? '',
        METADATA_SERVER_DETECTION: 'none',
        ...baseEnv(),
        LOGS_URI,
        LOGS_UPLOAD_SECONDS: '0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await vi.waitFor(() => expect(logText()).toContain('"message":"reading input"'), { timeout: 10_000 });
      const uploadsWhileRunning = logUploads().length;
      expect(uploadsWhileRunning).toBe(1); // nothing new was written since, so nothing new was sent
      child.kill('SIGTERM');
      expect(await exited).toBe(143);
      expect(stderr).toBe('pipeline-worker: stopped by SIGTERM\n');
      expect(logText()).toMatch(/"message":"reading input".*\n.*pipeline-worker: stopped by SIGTERM\n$/s);
    } finally {
      release();
      child.kill('SIGKILL');
    }
  });

  it('leaves the log alone when LOGS_URI is not a gs:// object (the VM agent and local mode write it)', async () => {
    const local = path.join(dir, 'attempt-1.log');
    const run = await runWorker(
      ['--input', path.join(dir, 'missing.csv'), '--output', path.join(dir, 'out')],
      {
        LOGS_URI: local,
        STORAGE_EMULATOR_HOST: gcs.url,
      },
    );
    expect(run.code).toBe(3);
    expect(fs.existsSync(local)).toBe(false);
    expect(gcs.requests).toEqual([]);
  });
});
