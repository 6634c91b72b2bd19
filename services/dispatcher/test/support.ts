// Hand-made dependencies for driving the dispatcher's app in tests: a real SqliteLedger in memory,
// real folders as buckets, and a launcher that records what it was asked to run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import {
  parseRoutingConfig,
  type CloudRunJobShape,
  type FoundLaunch,
  type Job,
  type LaunchRequest,
  type Launcher,
  type RoutingConfig,
  type RunStatus,
} from '@pipeline/core';
import { buildApp } from '../src/app.ts';
import { Dispatcher } from '../src/dispatcher.ts';
import { Reconciler } from '../src/reconciler.ts';
import { currentJob, type JobContext } from '../src/job-context.ts';
import { createLogger } from '../src/logger.ts';
import { FolderBlobStore } from '../src/local/folder-blob-store.ts';
import { SqliteLedger } from '../src/local/sqlite-ledger.ts';

export class RecordingLauncher implements Launcher {
  readonly launched: LaunchRequest[] = [];
  failWith: Error | undefined;

  /** When set, a launch waits for it: a launch still under way. */
  gate: Promise<void> | undefined;
  /** Called by cancel before it records the stop: lets a test change the job in between. */
  onCancel: ((execution: string) => Promise<void>) | undefined;

  /** The current job (job-context.ts) each launch and cancel ran for. */
  readonly contexts: { call: 'launch' | 'cancel'; job: JobContext | undefined }[] = [];

  async launch(request: LaunchRequest): Promise<{ execution: string }> {
    this.contexts.push({ call: 'launch', job: currentJob() });
    if (this.failWith !== undefined) throw this.failWith;
    if (this.gate !== undefined) await this.gate;
    this.launched.push(request);
    await new Promise((resolve) => setImmediate(resolve)); // a real launch takes a moment
    return { execution: `recorded-${this.launched.length}` };
  }

  /** What inspect answers, by execution (running when not set). */
  readonly statuses = new Map<string, RunStatus>();
  readonly cancelled: string[] = [];

  /** What this launcher launched for the job's attempt, as a platform's listing would find it. */
  async find(job: Job): Promise<FoundLaunch> {
    const index = this.launched.findIndex((r) => r.job.id === job.id && r.job.attempt === job.attempt);
    return index === -1 ? { kind: 'absent' } : { kind: 'found', execution: `recorded-${index + 1}` };
  }

  async inspect(execution: string): Promise<RunStatus> {
    return this.statuses.get(execution) ?? { kind: 'running' };
  }

  async cancel(execution: string): Promise<void> {
    this.contexts.push({ call: 'cancel', job: currentJob() });
    await this.onCancel?.(execution);
    this.cancelled.push(execution);
    this.statuses.set(execution, { kind: 'ended', exitCode: 143 });
  }
}

export const TEST_ROUTING = parseRoutingConfig({
  rules: [
    { name: 'vm-by-metadata', match: { runtime: 'vm' }, target: 'vm', job: { task: 'logreg' } },
    {
      name: 'big',
      match: { minSize: '1MiB' },
      target: 'vm',
      job: { task: 'logreg', machineType: 'e2-standard-8' },
    },
    { name: 'skip-images', match: { path: '**/*.png' }, target: 'ignore' },
    {
      name: 'csv',
      match: { path: '**' },
      target: 'cloud-run-job',
      job: { task: 'logreg', cpu: 2, memory: '4GiB', env: { TARGET_COLUMN: 'label' } },
    },
    { name: 'containers', target: 'cloud-run-job', job: { cpu: 1, memory: '2GiB' } },
  ],
});

/** The reconciler beside `dispatcher`, as gcp/wiring.ts and local/pipeline.ts build it: its ports, settings and clock. */
export function reconcilerBeside(dispatcher: Dispatcher): Reconciler {
  const { ledger, blobs, launchers, outputBucket, logger } = dispatcher.ports;
  const ports = { ledger, blobs, launchers, outputBucket, logger, settings: dispatcher.settings };
  return new Reconciler({ ...ports, now: dispatcher.now }, dispatcher);
}

export interface TestAppOptions {
  routing?: RoutingConfig;
  /** What the Cloud Run job is defined with (WORKER_JOB_CPU, ...); absent: what each job asks. */
  cloudRunJob?: CloudRunJobShape;
  /** The dispatcher's clock; real time when not given. */
  now?: () => Date;
}

export function testApp(outputBucket = 'acme-pipeline-output', options: TestAppOptions = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatcher-'));
  const ledger = new SqliteLedger(':memory:');
  const blobs = new FolderBlobStore(dir, {
    'acme-pipeline-input': path.join(dir, 'in'),
    [outputBucket]: path.join(dir, 'out'),
  });
  const launchers = { 'cloud-run-job': new RecordingLauncher(), vm: new RecordingLauncher() };
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger(sink);
  const dispatcher = new Dispatcher({
    ledger,
    blobs,
    launchers,
    routing: options.routing ?? TEST_ROUTING,
    ...(options.cloudRunJob === undefined ? {} : { cloudRunJob: options.cloudRunJob }),
    outputBucket,
    logger,
    now: options.now,
  });
  const reconciler = reconcilerBeside(dispatcher);
  const app = buildApp({ dispatcher, reconciler, ledger, logger });
  return {
    app,
    dir,
    ledger,
    blobs,
    launchers,
    dispatcher,
    reconciler,
    logs: lines,
    cleanup: () => {
      ledger.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
