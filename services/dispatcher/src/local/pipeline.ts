// The whole pipeline on one machine: the same dispatcher, router and ledger logic as on Google Cloud,
// with local adapters (folders as buckets, node:sqlite as the ledger, child processes as both launch
// targets, a folder watcher as the notification) and the HTTP API on loopback.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { FINAL_STATES, type Job, type RoutingConfig, type Target } from '@pipeline/core';
import type { Logger } from 'pino';
import type { CapacitySource } from '../launch-queue.ts';
import { buildApp } from '../app.ts';
import { Dispatcher } from '../dispatcher.ts';
import { createLogger } from '../logger.ts';
import { FolderBlobStore } from './folder-blob-store.ts';
import { InputWatcher } from './input-watcher.ts';
import { ProcessLauncher } from './process-launcher.ts';
import { SqliteLedger } from './sqlite-ledger.ts';

export const WORKER_BIN = path.resolve(import.meta.dirname, '../../../../jobs/worker/bin/pipeline-worker.js');
export const BUCKETS = { input: 'input', output: 'output', shared: 'shared' } as const;

export interface LocalPipelineOptions {
  /** The folder that holds the buckets and the ledger (local/ by default). */
  root: string;
  routing: RoutingConfig;
  port?: number;
  host?: string;
  logger?: Logger;
  /** Called when a job reaches SUCCEEDED or FAILED. */
  onJobEnded?: (job: Job) => void;
  /** Node options for task processes (tests load the loopback guard this way). */
  nodeOptions?: string[];
  scanIntervalMs?: number;
  quietMs?: number;
  /** How often the reconcile pass runs (launch due jobs, close lost runs); default 15 s, 0 never. */
  reconcileIntervalMs?: number;
  /** How many tasks run at once, whatever their target; the others wait QUEUED. Default: the cores. */
  capacity?: number;
}

export interface LocalPipeline {
  url: string;
  root: string;
  blobs: FolderBlobStore;
  ledger: SqliteLedger;
  dispatcher: Dispatcher;
  watcher: InputWatcher;
  /** Resolves when no task process is running. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalPipeline(options: LocalPipelineOptions): Promise<LocalPipeline> {
  const root = path.resolve(options.root);
  const logger = options.logger ?? createLogger();
  const folders = Object.fromEntries(
    Object.values(BUCKETS).map((bucket) => [bucket, path.join(root, bucket)]),
  );
  for (const folder of Object.values(folders)) fs.mkdirSync(folder, { recursive: true });
  const blobs = new FolderBlobStore(root, folders);
  const ledger = new SqliteLedger(path.join(root, 'pipeline.db'));

  const reporting = new Set<Promise<unknown>>();
  const report = (what: string, work: () => Promise<unknown>) => {
    const done = work()
      .catch((err: unknown) => logger.error({ err }, `recording ${what} failed`))
      .finally(() => reporting.delete(done));
    reporting.add(done);
  };
  const launcher = (target: Target) =>
    new ProcessLauncher({
      target,
      workerBin: WORKER_BIN,
      nodeOptions: options.nodeOptions,
      baseEnv: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', LOCAL_MODE: '1' },
      onStarted: (jobId, attempt, at) => report('a start', () => dispatcher.onStarted(jobId, attempt, at)),
      onCompletion: (completion) =>
        report('a completion', async () => {
          const job = await dispatcher.onCompletion(completion);
          if (job !== undefined && FINAL_STATES.includes(job.state)) options.onJobEnded?.(job);
        }),
    });
  const launchers = { 'cloud-run-job': launcher('cloud-run-job'), vm: launcher('vm') };
  // The launchers' callbacks run only after this line, when a task starts or ends.
  const dispatcher: Dispatcher = new Dispatcher({
    ledger,
    blobs,
    launchers,
    routing: options.routing,
    outputBucket: BUCKETS.output,
    logger,
    capacity: localCapacity(options.capacity ?? os.availableParallelism()),
  });

  const watcher = new InputWatcher({
    blobs,
    bucket: BUCKETS.input,
    intervalMs: options.scanIntervalMs,
    quietMs: options.quietMs,
    onEvent: async (event) => {
      await dispatcher.onStorageEvent(event);
    },
    onError: (err) => logger.error({ err }, 'scanning the input folder failed'),
  });

  const app = buildApp({ dispatcher, ledger, logger, localHosts: [options.host ?? '127.0.0.1'] });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  watcher.start();
  // The reconciler on a timer, as Cloud Scheduler calls POST /reconcile on Google Cloud. One pass at
  // a time: a pass that outlasts the interval is not overlapped by the next.
  const reconcileEvery = options.reconcileIntervalMs ?? 15_000;
  let reconciling: Promise<unknown> = Promise.resolve();
  const reconcileTimer =
    reconcileEvery > 0
      ? setInterval(() => {
          reconciling = reconciling.then(() =>
            dispatcher.reconcile().catch((err: unknown) => logger.error({ err }, 'reconcile pass failed')),
          );
        }, reconcileEvery)
      : undefined;

  const idle = async () => {
    await Promise.all(Object.values(launchers).map((l) => l.idle()));
    while (reporting.size > 0) await Promise.all(reporting);
  };
  return {
    url: `http://${host}:${address.port}`,
    root,
    blobs,
    ledger,
    dispatcher,
    watcher,
    idle,
    async stop() {
      clearInterval(reconcileTimer);
      await reconciling;
      await watcher.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all(Object.values(launchers).map((l) => l.stop()));
      while (reporting.size > 0) await Promise.all(reporting);
      ledger.close();
    },
  };
}

/** Local mode: `slots` tasks at once, of either target; no Cloud Run limit or runJob rate applies. */
export function localCapacity(slots: number): CapacitySource {
  const limits = {
    region: 'local',
    runExecutions: Number.POSITIVE_INFINITY,
    runJobsPerMinute: Number.POSITIVE_INFINITY,
    total: slots,
  };
  return { limits: async () => limits };
}
