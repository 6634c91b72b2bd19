// Local mode with its completions lost on purpose: the worker runs as a real child process, but the
// launcher's report of its end goes nowhere. The reconcile pass finds the ended process and closes
// the job as it ended; a process of an earlier dispatcher (unknown to this one) is judged by its
// outputs' _SUCCESS marker.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRoutingConfig, type Target } from '@pipeline/core';
import { Dispatcher } from '../src/dispatcher.ts';
import type { Reconciler } from '../src/reconciler.ts';
import { reconcilerBeside } from './support.ts';
import { FolderBlobStore } from '../src/local/folder-blob-store.ts';
import { ProcessLauncher } from '../src/local/process-launcher.ts';
import { SqliteLedger } from '../src/local/sqlite-ledger.ts';
import { WORKER_BIN } from '../src/local/pipeline.ts';
import { createLogger } from '../src/logger.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

const ROUTING = parseRoutingConfig({
  rules: [{ name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job: { task: 'logreg' } }],
});

let dir: string;
let ledger: SqliteLedger;
let launchers: Record<Target, ProcessLauncher>;
let dispatcher: Dispatcher;
let reconciler: Reconciler;

function build(): void {
  const blobs = new FolderBlobStore(dir, {
    input: path.join(dir, 'input'),
    output: path.join(dir, 'output'),
  });
  const launcher = (target: Target) =>
    new ProcessLauncher({
      target,
      workerBin: WORKER_BIN,
      nodeOptions: ['--import', LOOPBACK_GUARD],
      baseEnv: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', LOCAL_MODE: '1' },
      onStarted: (jobId, attempt, at) => void dispatcher.onStarted(jobId, attempt, at),
      onCompletion: () => {}, // lost on purpose
    });
  launchers = { 'cloud-run-job': launcher('cloud-run-job'), vm: launcher('vm') };
  dispatcher = new Dispatcher({
    ledger,
    blobs,
    launchers,
    routing: ROUTING,
    outputBucket: 'output',
    logger: createLogger(undefined, 'silent'),
    reconcile: { goneGraceSeconds: 0 }, // judged in the pass after the one that notices
  });
  reconciler = reconcilerBeside(dispatcher);
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-reconcile-'));
  fs.mkdirSync(path.join(dir, 'input'));
  fs.mkdirSync(path.join(dir, 'output'));
  ledger = new SqliteLedger(path.join(dir, 'pipeline.db'));
  build();
});

afterEach(async () => {
  await Promise.all(Object.values(launchers).map((l) => l.stop()));
  ledger.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function submit(name: string, text: string): Promise<string> {
  fs.writeFileSync(path.join(dir, 'input', name), text);
  const intake = await dispatcher.submitObject({ bucket: 'input', name });
  if (intake.outcome !== 'created') throw new Error(`not created: ${intake.outcome}`);
  await launchers['cloud-run-job'].idle();
  return intake.job.id;
}

const rows = Array.from({ length: 200 }, (_, i) => `${i % 7},${(i * 13) % 11},${i % 2}`).join('\n');

describe('local mode, completions lost', () => {
  it('closes a finished process as SUCCEEDED and a failed one as FAILED', async () => {
    const good = await submit('good.csv', `a,b,label\n${rows}\n`);
    const bad = await submit('one-class.csv', 'a,label\n1,x\n2,x\n');
    expect((await ledger.get(good))!.state).toMatch(/LAUNCHED|RUNNING/);

    const report = await reconciler.pass();
    expect(report.closed.map((c) => [c.id, c.state]).sort()).toEqual(
      [
        [good, 'SUCCEEDED'],
        [bad, 'FAILED'],
      ].sort(),
    );
    expect(await ledger.get(bad)).toMatchObject({ state: 'FAILED', exitCode: 4 });
    expect((await ledger.get(bad))!.error).toContain('label');
    expect(fs.existsSync(path.join((await ledger.get(good))!.outputUri!, '_SUCCESS'))).toBe(true);
  });

  it('after a restart, judges a process it never knew by its _SUCCESS marker', async () => {
    const good = await submit('good.csv', `a,b,label\n${rows}\n`);
    build(); // a new dispatcher and launchers: the old process is unknown to them
    await reconciler.pass(); // noticed gone
    expect((await ledger.get(good))!.attempts[0].goneAt).toBeDefined();
    await reconciler.pass();
    const job = (await ledger.get(good))!;
    expect(job.state).toBe('SUCCEEDED');
    expect(job.history.at(-1)?.detail).toContain('its _SUCCESS marker is there');
  });
});
