// The whole pipeline on one machine: the same dispatcher, router and ledger logic as on Google Cloud,
// with local adapters (folders as buckets, node:sqlite as the ledger, child processes as both launch
// targets, a folder watcher as the notification) and the HTTP API on loopback.
//
// Stopping it ends the tasks it runs, and records each as interrupted (interruption.ts): its job
// waits QUEUED as the same attempt, at its place, its slot given back. Starting it again restarts
// their wait for capacity, makes the capacity record true again (nothing of an earlier process can
// hold a slot, only the launched or running jobs the ledger still has) and drains the queue, so they
// run again first.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  demandOf,
  FINAL_STATES,
  interruptAttempt,
  repairSlots,
  resumeInterrupted,
  wasInterrupted,
  type Job,
  type JobState,
  type RoutingConfig,
  type SlotHolder,
  type Target,
} from '@pipeline/core';
import type { Logger } from 'pino';
import type { CapacitySource } from '../launch-queue.ts';
import { buildApp } from '../app.ts';
import { Backfiller } from '../backfill.ts';
import { Dispatcher } from '../dispatcher.ts';
import { Reconciler } from '../reconciler.ts';
import { createLogger } from '../logger.ts';
import { FolderBlobStore } from './folder-blob-store.ts';
import { InputWatcher } from './input-watcher.ts';
import { LocalJobEvents } from './local-events.ts';
import { DEFAULT_STOP_GRACE_MS, ProcessLauncher, type Interruption } from './process-launcher.ts';
import { SqliteLedger } from './sqlite-ledger.ts';
import { SqliteBackfillStore } from './sqlite-backfill-store.ts';

export const WORKER_BIN = path.resolve(import.meta.dirname, '../../../../jobs/worker/bin/pipeline-worker.js');
export const BUCKETS = { input: 'input', output: 'output', shared: 'shared' } as const;
/** How long the first drain after a start may run: the jobs a stop interrupted launch in it. */
const START_DRAIN_MS = 10_000;
const PAGE = 200;
/** How long a timer's pass advances backfills, at most. */
const BACKFILL_PASS_MS = 10_000;

export interface LocalPipelineOptions {
  /** The folder that holds the buckets and the ledger (local/ by default). */
  root: string;
  routing: RoutingConfig;
  port?: number;
  host?: string;
  logger?: Logger;
  /** Called when a job reaches SUCCEEDED or FAILED. */
  onJobEnded?: (job: Job) => void;
  /** Called when stopping the pipeline interrupted a job's run: it runs again at the next start. */
  onJobInterrupted?: (job: Job) => void;
  /** How long a task may take to end on SIGTERM when the pipeline stops, before SIGKILL. */
  stopGraceMs?: number;
  /** Node options for task processes (tests load the loopback guard this way). */
  nodeOptions?: string[];
  scanIntervalMs?: number;
  quietMs?: number;
  /** How often the reconcile pass runs (launch due jobs, close lost runs); default 15 s, 0 never. */
  reconcileIntervalMs?: number;
  /** How many tasks run at once, whatever their target; the others wait QUEUED. Default: the cores. */
  capacity?: number;
  /** How often an idle GET /events stream sends a heartbeat; default 15 s. */
  eventsHeartbeatMs?: number;
}

export interface LocalPipeline {
  url: string;
  root: string;
  blobs: FolderBlobStore;
  ledger: SqliteLedger;
  /** The job events: events.ndjson and the GET /events stream. */
  events: LocalJobEvents;
  dispatcher: Dispatcher;
  reconciler: Reconciler;
  backfills: Backfiller;
  watcher: InputWatcher;
  /** Resolves when no task process is running. */
  idle(): Promise<void>;
  /** Takes no more work and ends the running tasks, recorded as interrupted for `reason`. */
  stop(reason?: string): Promise<void>;
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
  const events = new LocalJobEvents(path.join(root, 'events.ndjson'), {
    heartbeatMs: options.eventsHeartbeatMs,
  });

  const reporting = new Set<Promise<unknown>>();
  const report = (what: string, work: () => Promise<unknown>) => {
    const done = work()
      .catch((err: unknown) => logger.error({ err }, `recording ${what} failed`))
      .finally(() => reporting.delete(done));
    reporting.add(done);
  };
  /** A run the stop ended: its job back in the queue as the same attempt, its slot given back at once. */
  const interrupted = async ({ jobId, attempt, at, reason }: Interruption) => {
    const job = await dispatcher.mutate(jobId, (current) => interruptAttempt(current, attempt, at, reason));
    await dispatcher.queue.release(jobId);
    if (job !== undefined && job.attempt === attempt && wasInterrupted(job)) options.onJobInterrupted?.(job);
  };
  const launcher = (target: Target) =>
    new ProcessLauncher({
      target,
      workerBin: WORKER_BIN,
      nodeOptions: options.nodeOptions,
      baseEnv: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', LOCAL_MODE: '1' },
      buckets: folders,
      onStarted: (jobId, attempt, at) => report('a start', () => dispatcher.onStarted(jobId, attempt, at)),
      onCompletion: (completion) =>
        report('a completion', async () => {
          const job = await dispatcher.onCompletion(completion);
          if (job !== undefined && FINAL_STATES.includes(job.state)) options.onJobEnded?.(job);
        }),
      onInterrupted: (interruption) => report('an interruption', () => interrupted(interruption)),
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
    events,
  });
  // The dispatcher's ledger: what the reconciler writes publishes its events too.
  const reconciler = new Reconciler(
    {
      ledger: dispatcher.ports.ledger,
      blobs,
      launchers,
      outputBucket: BUCKETS.output,
      logger,
      settings: dispatcher.settings,
    },
    dispatcher,
  );

  // Backfills list the input folder a page at a time and submit through the same dispatcher.
  const backfillStore = new SqliteBackfillStore(path.join(root, 'backfills.db'));
  const backfills = new Backfiller({ store: backfillStore, lister: blobs, dispatcher, logger });

  const recovered = await recoverFromLastStop(dispatcher);
  if (recovered.resumed > 0 || recovered.slotsRepaired)
    logger.info(recovered, 'jobs interrupted by the last stop queued again; the capacity record repaired');

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

  const app = buildApp({
    dispatcher,
    reconciler,
    ledger,
    logger,
    backfills,
    localEvents: events,
    localHosts: [options.host ?? '127.0.0.1'],
  });
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
  // What waited when the pipeline last stopped launches now, not at the first reconcile pass.
  // Events the last run stored but did not publish (it stopped between the two) go out now.
  let reconciling: Promise<unknown> = Promise.all([
    dispatcher.publishEvents(),
    dispatcher.queue
      .kick(START_DRAIN_MS)
      .catch((err: unknown) => logger.error({ err }, 'draining the queue at start failed')),
  ]);
  const reconcileTimer =
    reconcileEvery > 0
      ? setInterval(() => {
          reconciling = reconciling.then(async () => {
            await reconciler.pass().catch((err: unknown) => logger.error({ err }, 'reconcile pass failed'));
            await backfills
              .continueRunning(BACKFILL_PASS_MS)
              .catch((err: unknown) => logger.error({ err }, 'advancing backfills failed'));
          });
        }, reconcileEvery)
      : undefined;

  const idle = async () => {
    await Promise.all(Object.values(launchers).map((l) => l.idle()));
    while (reporting.size > 0) await Promise.all(reporting);
    await dispatcher.publishEvents(); // what those reports stored is in events.ndjson
  };
  return {
    url: `http://${host}:${address.port}`,
    root,
    blobs,
    ledger,
    events,
    dispatcher,
    reconciler,
    backfills,
    watcher,
    idle,
    async stop(reason = 'the local pipeline stopped') {
      clearInterval(reconcileTimer);
      // First, so that nothing launches from here on: a drain would take an interrupted job at the
      // head of the queue, and the launchers' refusal would overwrite its interruption. A pass under
      // way ends before the tasks are ended, so it never judges a run the stop ended.
      await dispatcher.queue.close();
      await reconciling;
      const ending = Promise.all(
        Object.values(launchers).map((l) => l.stop(reason, options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS)),
      );
      await watcher.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await reconciling;
      await ending;
      while (reporting.size > 0) await Promise.all(reporting);
      // What the stop itself recorded (interruptions) is published before the ledger closes.
      await dispatcher.outbox?.close();
      ledger.close();
      backfillStore.close();
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

/**
 * What the last stop left: its interrupted jobs wait for capacity anew (resumeInterrupted), and the
 * capacity record holds slots only for the jobs the ledger has launched or running. No other process
 * works on this ledger, so a slot of any other job is left over (a stop that could not give it back).
 */
async function recoverFromLastStop(
  dispatcher: Dispatcher,
): Promise<{ resumed: number; slotsRepaired: boolean }> {
  const at = dispatcher.iso();
  let resumed = 0;
  for await (const job of jobsIn(dispatcher, ['QUEUED'])) {
    if (!wasInterrupted(job)) continue;
    const next = await dispatcher.mutate(job.id, (current) => resumeInterrupted(current, at));
    if (next !== undefined && next.version > job.version) resumed++;
  }
  const active = new Map<string, Omit<SlotHolder, 'at'>>();
  for await (const job of jobsIn(dispatcher, ['LAUNCHED', 'RUNNING'])) {
    if (job.target === undefined) continue;
    const demand = demandOf(job.target, job.template, dispatcher.queue.defaultMachineType);
    active.set(job.id, { ...demand, jobId: job.id, ...(job.rule === undefined ? {} : { rule: job.rule }) });
  }
  let slotsRepaired = false;
  await dispatcher.queue.changeRecord((record) => {
    const repaired = repairSlots(record, active, at, 0);
    slotsRepaired = repaired !== undefined;
    return repaired;
  });
  return { resumed, slotsRepaired };
}

/** Every job in `states`, page by page. */
async function* jobsIn(dispatcher: Dispatcher, states: JobState[]): AsyncGenerator<Job> {
  for (const state of states) {
    let pageToken: string | undefined;
    do {
      const page = await dispatcher.ports.ledger.list({ state, limit: PAGE, pageToken });
      pageToken = page.nextPageToken;
      yield* page.jobs;
    } while (pageToken !== undefined);
  }
}
