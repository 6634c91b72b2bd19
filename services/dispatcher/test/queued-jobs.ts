// A dispatcher whose jobs wait, for the CLI's and the dashboard's tests: served on loopback with its
// dashboard, bounded by limits like a region's, with a launcher whose runs never end and which
// refuses GPU VMs for want of capacity. The clock stands still but for a step per job, so the queue's
// order, the refusal's backoff and the ceiling it taught stay as made while a test reads them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  LaunchError,
  parseRoutingConfig,
  type CapacityLimits,
  type FoundLaunch,
  type Job,
  type LaunchRequest,
  type LaunchResult,
  type Launcher,
  type RunStatus,
} from '@pipeline/core';
import { buildApp } from '../src/app.ts';
import { Dispatcher } from '../src/dispatcher.ts';
import { FolderBlobStore } from '../src/local/folder-blob-store.ts';
import { SqliteLedger } from '../src/local/sqlite-ledger.ts';
import { createLogger } from '../src/logger.ts';
import { reconcilerBeside } from './support.ts';

export const LIMITS: CapacityLimits = {
  region: 'us-central1',
  runExecutions: 10,
  runJobsPerMinute: 60,
  vmCpus: 12,
  vmCpuQuota: 24,
  gpus: { 'nvidia-l4': { limit: 2, quota: 4 } },
  total: 4,
};

/** A platform's message is data too: this one carries markup, which the dashboard must show as text. */
export const STOCKOUT =
  'ZONE_RESOURCE_POOL_EXHAUSTED: no <b>nvidia-l4</b> in us-central1-a, -b, -c <img src=x onerror=globalThis.pwned=2>';
export const ZONE_REFUSAL = 'us-central1-a: ZONE_RESOURCE_POOL_EXHAUSTED: no e2-standard-8 there now';

const ROUTING = parseRoutingConfig({
  rules: [
    {
      name: 'one-at-a-time',
      match: { path: 'one/**' },
      target: 'cloud-run-job',
      job: { task: 'logreg' },
      queue: { maxConcurrent: 1 },
    },
    {
      name: 'gpu',
      match: { path: 'gpu/**' },
      target: 'vm',
      job: { task: 'logreg', machineType: 'g2-standard-4', accelerator: { type: 'nvidia-l4', count: 1 } },
    },
    {
      name: 'big',
      match: { path: 'big/**' },
      target: 'vm',
      job: { task: 'logreg', machineType: 'e2-standard-8' },
    },
  ],
});

/** Runs that go on until cancelled; a GPU VM is refused as a stockout, a VM gets one zone's refusal first. */
class HoldingLauncher implements Launcher {
  private count = 0;
  private readonly ended = new Set<string>();

  async launch({ job, target }: LaunchRequest): Promise<LaunchResult> {
    if (job.rule === 'gpu') throw new LaunchError(STOCKOUT, true, { capacity: true });
    const execution = `${target}-run-${++this.count}`;
    return target === 'vm' ? { execution, refusals: [ZONE_REFUSAL] } : { execution };
  }

  async find(): Promise<FoundLaunch> {
    return { kind: 'absent' };
  }

  async inspect(execution: string): Promise<RunStatus> {
    return this.ended.has(execution) ? { kind: 'ended', exitCode: 143 } : { kind: 'running' };
  }

  async cancel(execution: string): Promise<void> {
    this.ended.add(execution);
  }
}

export interface QueuedJobs {
  url: string;
  /** By object name: one/a.csv and big/a.csv run; gpu/a.csv, one/b.csv, big/b.csv, one/c.csv wait, in that order. */
  jobs: Record<string, Job>;
  ledger: SqliteLedger;
  stop(): Promise<void>;
}

export const WAITING = ['gpu/a.csv', 'one/b.csv', 'big/b.csv', 'one/c.csv'];
const SUBMITTED = ['one/a.csv', 'big/a.csv', 'gpu/a.csv', 'one/b.csv', 'big/b.csv', 'one/c.csv'];

export async function startQueuedJobs(): Promise<QueuedJobs> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'queued-jobs-'));
  const blobs = new FolderBlobStore(root, { input: path.join(root, 'in'), output: path.join(root, 'out') });
  const ledger = new SqliteLedger(':memory:');
  const launcher = new HoldingLauncher();
  // Steps 100 ms per job, well inside the refusal's 2 s backoff, and ends now: no job was queued in
  // the future of a reader's clock.
  let now = Date.now() - 100 * SUBMITTED.length;
  const dispatcher = new Dispatcher({
    ledger,
    blobs,
    launchers: { 'cloud-run-job': launcher, vm: launcher },
    routing: ROUTING,
    outputBucket: 'output',
    logger: createLogger(undefined, 'silent'),
    capacity: { limits: async () => LIMITS },
    now: () => new Date(now),
  });
  const jobs: Record<string, Job> = {};
  for (const name of SUBMITTED) {
    const file = path.join(root, 'in', name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'x,label\n1,0\n2,1\n');
    const intake = await dispatcher.submitObject({ bucket: 'input', name });
    if (intake.outcome === 'skipped') throw new Error(`${name}: ${intake.reason}`);
    jobs[name] = intake.job;
    now += 100;
  }
  const reconciler = reconcilerBeside(dispatcher);
  const app = buildApp({ dispatcher, reconciler, ledger, logger: createLogger(undefined, 'silent') });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    jobs,
    ledger,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      ledger.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
