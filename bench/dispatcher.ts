// Dispatcher benchmarks, each against a baseline measured in the same run (`npm run bench --
// dispatcher`, or one part: cold-start, intake, drain):
// - cold start: process start to the first 200 from /healthz, for the cloud dispatcher and for a bare
//   express app started the same way; the ratio is the figure (target <= 1.3x);
// - push intake: distinct OBJECT_FINALIZE pushes through the whole intake (parse, route, one claim in
//   the ledger, the queue's drain; launches go through the real Run client to a loopback double,
//   bounded as deployed: 900 executions, 60 runJob calls a minute), 32 at a time from a load
//   generator in its own thread, against a bare express handler that parses the same bodies. The
//   two take turns, 1 s each, 6 times (ABBA), so that both meet the same noise of a shared machine;
//   throughput counts the pushes answered within each second, latencies count every push. Also the
//   CPU time of the server's thread per push, which the load of the machine changes least. With a
//   sqlite ledger in a temp file (target: >= 1,000 pushes/s and p99 < 50 ms; BENCH_SQLITE=memory
//   for ':memory:'), then with the Firestore emulator, when installed (started and stopped here, by
//   its process group's pid); BENCH_LEDGERS=sqlite measures one;
// - drain: a burst of distinct pushes to a dispatcher whose capacity is 10 Cloud Run executions; the
//   Run double ends each execution EXECUTION_SECONDS after it started and its completion is pushed to
//   /pubsub/completions at once, as Pub/Sub would; each success moves its object's _LATEST pointer in
//   the loopback Cloud Storage double; from the first push to the last job SUCCEEDED, against the
//   ideal ceil(burst / slots) * EXECUTION_SECONDS.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import type { Firestore } from '@google-cloud/firestore';
import { OAuth2Client } from 'google-auth-library';
import {
  completionAttributes,
  DEFAULT_RUN_EXECUTIONS,
  DEFAULT_RUN_JOBS_PER_MINUTE,
  parseRoutingConfig,
  type CapacityLimits,
  type CompletionEvent,
  type BlobStore,
  type Ledger,
} from '@pipeline/core';
import { buildApp } from '../services/dispatcher/src/app.ts';
import { Dispatcher } from '../services/dispatcher/src/dispatcher.ts';
import type { CapacitySource } from '../services/dispatcher/src/launch-queue.ts';
import { Reconciler } from '../services/dispatcher/src/reconciler.ts';
import { createLogger, logDestination } from '../services/dispatcher/src/logger.ts';
import {
  closeGoogleClients,
  executionsClient,
  jobsClient,
  tasksClient,
} from '../services/dispatcher/src/gcp/clients.ts';
import { CloudRunJobLauncher } from '../services/dispatcher/src/gcp/run-launcher.ts';
import { GcsBlobStore } from '../services/dispatcher/src/gcp/gcs-blob-store.ts';
import { startFakeGcs } from '../test/support/fake-gcs.ts';
import { SqliteLedger } from '../services/dispatcher/src/local/sqlite-ledger.ts';
import { emulatorInstalled, freePort, startEmulator, type Emulator } from '../test/support/emulators.ts';
import { isRunJob, startFakeRun, type EndedExecution, type FakeRun } from '../test/support/fake-run.ts';
import { load, type LoadResult } from './load.ts';

const root = path.resolve(import.meta.dirname, '..');
const COLD_RUNS = 7;
/** Pushes sent to each server before it is measured, so that both run JIT-compiled code. */
const WARMUP = 500;
/** The intake and its baseline take turns, this many times each, for this long each time. */
const INTAKE_ROUNDS = 6;
const INTAKE_ROUND_SECONDS = 1;
const CONCURRENCY = 32;
const BURST = 200;
const BURST_SLOTS = 10;
const EXECUTION_SECONDS = 0.5;
const INTAKE_TARGET = { pushesPerSecond: 1000, p99Ms: 50 };

const CLOUD_ENV = {
  GOOGLE_CLOUD_PROJECT: 'acme-prod',
  REGION: 'us-central1',
  ZONE: 'us-central1-a',
  OUTPUT_BUCKET: 'acme-pipeline-output',
  WORKER_JOB: 'pipeline-worker',
  WORKER_IMAGE: 'us-central1-docker.pkg.dev/acme-prod/pipeline/worker:1',
  AGENT_IMAGE: 'us-central1-docker.pkg.dev/acme-prod/pipeline/agent:1',
  WORKER_SERVICE_ACCOUNT: 'worker@acme-prod.iam.gserviceaccount.com',
  COMPLETIONS_TOPIC: 'pipeline-completions',
  PUSH_AUDIENCE: 'https://dispatcher.example.run.app',
  PUSH_SERVICE_ACCOUNT: 'push@acme-prod.iam.gserviceaccount.com',
  HOST: '127.0.0.1',
  METADATA_SERVER_DETECTION: 'none',
};

/** Milliseconds from spawning `node script` to its first 200 on /healthz; `cache`: a NODE_COMPILE_CACHE folder. */
async function coldStart(script: string, cache?: string): Promise<number> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    ...CLOUD_ENV,
    PORT: String(port),
    ...(cache === undefined ? {} : { NODE_COMPILE_CACHE: cache }),
  };
  const started = performance.now();
  const child = spawn(process.execPath, [script], { env, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return performance.now() - started;
      } catch {
        // not listening yet
      }
      if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    child.kill('SIGTERM');
    await exited; // a clean exit writes the compile cache, and the next run starts on a quiet machine
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function listen(app: express.Express): Promise<{ url: string; server: Server }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }),
    );
  });
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

let runs = 0;

/**
 * One load of distinct pushes, CONCURRENCY at a time (`count` of them, or for `seconds`), with this
 * thread's CPU time meanwhile.
 */
async function push(
  url: string,
  size: { count: number } | { seconds: number },
): Promise<LoadResult & { cpuMs: number }> {
  const before = process.threadCpuUsage();
  const result = await load({
    url,
    prefix: `bench-${process.pid}-${++runs}`,
    ...size,
    concurrency: CONCURRENCY,
  });
  const cpu = process.threadCpuUsage(before);
  return { ...result, cpuMs: (cpu.user + cpu.system) / 1000 };
}

interface Throughput {
  pushes: number;
  /** Pushes answered within the loads' time, per second. */
  perSecond: number;
  p50: number;
  p99: number;
  /** CPU time of the server's thread (this one: the load generator has its own), per push. */
  cpuMsPerPush: number;
  mean: number;
  p999: number;
  max: number;
}

/** The figures of several loads of one server, taken together. */
function throughput(loads: (LoadResult & { cpuMs: number })[]): Throughput {
  const latencies = loads.flatMap((l) => l.latencies);
  return {
    pushes: latencies.length,
    perSecond: sum(loads.map((l) => l.answered)) / sum(loads.map((l) => l.seconds)),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    cpuMsPerPush: sum(loads.map((l) => l.cpuMs)) / latencies.length,
    mean: sum(latencies) / latencies.length,
    p999: percentile(latencies, 0.999),
    max: Math.max(...latencies),
  };
}

const describe = (t: Throughput) =>
  `${Math.round(t.perSecond)} pushes/s, p50 ${fmt(t.p50)}, p99 ${fmt(t.p99)}, ${t.cpuMsPerPush.toFixed(2)} ms CPU a push (mean ${fmt(t.mean)}, p99.9 ${fmt(t.p999)}, max ${fmt(t.max)})`;

/** The load's answers, or why they are wrong: every push is a new object, so each one is created (201). */
function expectAnswers(result: LoadResult, status: number, what: string): void {
  const wrong = Object.entries(result.statuses).filter(([s]) => Number(s) !== status);
  if (wrong.length > 0)
    throw new Error(
      `${what}: expected every push to answer ${status}, got ${JSON.stringify(result.statuses)}`,
    );
}

/** The baseline: express parsing the same bodies and answering 204. */
function bareApp(): express.Express {
  const app = express();
  app.post('/pubsub/push', express.json(), (_req, res) => {
    res.status(204).end();
  });
  return app;
}

/** Capacity as a deployment would configure it; `runExecutions` and `runJobsPerMinute` as given. */
function capacity(limits: Omit<CapacityLimits, 'region'>): CapacitySource {
  const all = { region: 'us-central1', ...limits };
  return { limits: async () => all };
}

/** The cloud dispatcher's intake, with `ledger`, the real Run client to the double, and `capacity`. */
function dispatcherFor(options: {
  ledger: Ledger;
  run: FakeRun;
  capacity: CapacitySource;
  logFile: string;
  blobs?: BlobStore;
}) {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'bench', expiry_date: Date.now() + 3_600_000 });
  // Logs as in production (logger.ts's destination), to a file instead of stdout.
  const logFd = fs.openSync(options.logFile, 'a');
  const destination = logDestination(logFd);
  const logger = createLogger(destination);
  const endpoint = { endpoint: options.run.endpoint, authClient: auth };
  const launcher = new CloudRunJobLauncher({
    project: 'acme-prod',
    region: 'us-central1',
    job: 'pipeline-worker',
    client: () => jobsClient(endpoint),
    executions: () => executionsClient(endpoint),
    tasks: () => tasksClient(endpoint),
  });
  const routing = parseRoutingConfig({
    rules: [{ name: 'csv', match: { path: '**' }, target: 'cloud-run-job', job: { task: 'logreg' } }],
  });
  const ports = {
    ledger: options.ledger,
    blobs: options.blobs ?? new GcsBlobStore(),
    launchers: { 'cloud-run-job': launcher, vm: launcher },
    outputBucket: 'acme-pipeline-output',
    logger,
  };
  const dispatcher = new Dispatcher({ ...ports, routing, capacity: options.capacity });
  const reconciler = new Reconciler({ ...ports, settings: dispatcher.settings }, dispatcher);
  const app = buildApp({ dispatcher, reconciler, ledger: options.ledger, logger });
  return {
    app,
    dispatcher,
    /** Waits for the drain still running, then flushes and closes the log. */
    async settle() {
      while (!(await dispatcher.queue.kick(0))) await sleep(10);
      destination.flushSync();
      fs.closeSync(logFd);
    },
  };
}

type LedgerKind = 'sqlite' | 'firestore';

interface Ledgers {
  make(kind: LedgerKind): Promise<{ ledger: Ledger; describe: string; close(): Promise<void> }>;
  close(): Promise<void>;
}

/** The ledgers to measure: sqlite in a temp folder; Firestore on its emulator, started on first use. */
function ledgers(dir: string): Ledgers {
  let emulator: Emulator | undefined;
  let firestore: Firestore | undefined;
  let made = 0;
  return {
    async make(kind) {
      made++;
      if (kind === 'sqlite') {
        const file = path.join(dir, `ledger-${made}.sqlite`);
        const memory = process.env.BENCH_SQLITE === 'memory';
        const ledger = new SqliteLedger(memory ? ':memory:' : file);
        return {
          ledger,
          describe: `sqlite ledger ${memory ? 'in memory' : `in a file (${SqliteLedger.durability})`}`,
          async close() {
            ledger.close();
          },
        };
      }
      if (emulator === undefined) {
        emulator = await startEmulator('firestore');
        // The variable would win over `host` (see the Firestore ledger's integration test).
        delete process.env.FIRESTORE_EMULATOR_HOST;
        const { Firestore } = await import('@google-cloud/firestore');
        firestore = new Firestore({
          projectId: 'bench-project',
          host: emulator.host,
          ssl: false,
          universeDomain: 'googleapis.com',
        });
      }
      const { FirestoreLedger } = await import('../services/dispatcher/src/gcp/firestore-ledger.ts');
      return {
        ledger: new FirestoreLedger({ firestore: firestore!, collection: `bench-${made}` }),
        describe: 'Firestore emulator ledger',
        async close() {},
      };
    },
    async close() {
      await firestore?.terminate();
      await emulator?.stop();
    },
  };
}

interface IntakeFigures {
  describe: string;
  measured: Throughput;
  baseline: Throughput;
  /** Each round's throughput of the intake over the baseline's, sorted. */
  ratios: number[];
  logLinesPerPush: number;
  launched: number;
}

/**
 * Push intake of one ledger, in INTAKE_ROUNDS rounds alternating with the baseline (ABBA), so that
 * both meet the same noise of a shared machine.
 */
async function measureIntake(kind: LedgerKind, made: Ledgers, dir: string): Promise<IntakeFigures> {
  const run = await startFakeRun();
  const { ledger, describe: what, close: closeLedger } = await made.make(kind);
  const logFile = path.join(dir, `intake-${kind}.log`);
  const intake = dispatcherFor({
    ledger,
    run,
    logFile,
    capacity: capacity({
      runExecutions: DEFAULT_RUN_EXECUTIONS,
      runJobsPerMinute: DEFAULT_RUN_JOBS_PER_MINUTE,
    }),
  });
  const full = await listen(intake.app);
  const bare = await listen(bareApp());
  try {
    await push(bare.url, { count: WARMUP });
    expectAnswers(await push(full.url, { count: WARMUP }), 201, `${kind} warm-up`);
    const round = { seconds: INTAKE_ROUND_SECONDS };
    const measured: Awaited<ReturnType<typeof push>>[] = [];
    const baseline: Awaited<ReturnType<typeof push>>[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < INTAKE_ROUNDS; i++) {
      const first = i % 2 === 0;
      const b1 = first ? await push(bare.url, round) : undefined;
      const m = await push(full.url, round);
      const b2 = first ? undefined : await push(bare.url, round);
      const b = (b1 ?? b2)!;
      expectAnswers(m, 201, kind);
      measured.push(m);
      baseline.push(b);
      ratios.push(m.answered / m.seconds / (b.answered / b.seconds));
    }
    await intake.settle();
    const lines = fs.readFileSync(logFile, 'utf8').split('\n').length - 1;
    return {
      describe: what,
      measured: throughput(measured),
      baseline: throughput(baseline),
      ratios: ratios.sort((x, y) => x - y),
      logLinesPerPush: lines / (sum(measured.map((m) => m.latencies.length)) + WARMUP),
      launched: run.executions.length,
    };
  } finally {
    await close(full.server);
    await close(bare.server);
    await run.close();
    await closeGoogleClients();
    await closeLedger();
  }
}

interface DrainFigures {
  describe: string;
  seconds: number;
  ideal: number;
  pushSeconds: number;
  refusals: number;
  maxRunning: number;
}

/**
 * BURST distinct pushes to a dispatcher with BURST_SLOTS Cloud Run executions; each execution ends
 * after EXECUTION_SECONDS and its completion is pushed at once. Seconds from the first push to the
 * last completion answered, every job SUCCEEDED.
 */
/**
 * Cloud Storage whose writes are answered at once, without a request: the drain's baseline, to tell
 * what moving each success's _LATEST pointer (a request to the Storage double) costs.
 */
function storageWithoutWrites(): BlobStore {
  const gcs = new GcsBlobStore();
  return {
    stat: (bucket, name) => gcs.stat(bucket, name),
    uri: (bucket, name) => gcs.uri(bucket, name),
    read: (uri, offset, maxBytes) => gcs.read(uri, offset, maxBytes),
    list: (bucket, prefix, limit) => gcs.list(bucket, prefix, limit),
    get: (bucket, name) => gcs.get(bucket, name),
    putIf: async () => true,
  };
}

async function measureDrain(
  kind: LedgerKind,
  made: Ledgers,
  dir: string,
  pointers: 'written' | 'answered at once',
): Promise<DrainFigures> {
  let completionsUrl = '';
  let completed = 0;
  let maxRunning = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => (allDone = resolve));
  const failures: string[] = [];
  const complete = async ({ env, outcome }: EndedExecution) => {
    const finishedAt = new Date();
    const event: CompletionEvent = {
      jobId: env.JOB_ID,
      attempt: Number(env.ATTEMPT),
      exitCode: outcome.phase === 'succeeded' ? 0 : 1,
      startedAt: new Date(finishedAt.getTime() - EXECUTION_SECONDS * 1000).toISOString(),
      finishedAt: finishedAt.toISOString(),
      preempted: false,
    };
    const body = JSON.stringify({
      message: {
        data: Buffer.from(JSON.stringify(event)).toString('base64'),
        attributes: completionAttributes(event),
        messageId: `completion-${env.JOB_ID}`,
      },
      subscription: 'projects/acme-prod/subscriptions/completions-push',
    });
    try {
      const response = await fetch(`${completionsUrl}/pubsub/completions`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
      await response.arrayBuffer();
      if (response.status !== 204) failures.push(`completion answered ${response.status}`);
    } catch (err) {
      failures.push(`completion failed: ${(err as Error).message}`);
    }
    if (++completed === BURST) allDone();
  };
  const run = await startFakeRun({
    // The double refuses what the capacity limits should never ask for: a refusal here is overbooking.
    maxRunning: BURST_SLOTS,
    executionSeconds: EXECUTION_SECONDS,
    onExecutionEnded: (execution) => void complete(execution),
  });
  const { ledger, describe: what, close: closeLedger } = await made.make(kind);
  const drain = dispatcherFor({
    ledger,
    run,
    logFile: path.join(dir, `drain-${kind}.log`),
    capacity: capacity({ runExecutions: BURST_SLOTS, runJobsPerMinute: Number.POSITIVE_INFINITY }),
    ...(pointers === 'written' ? {} : { blobs: storageWithoutWrites() }),
  });
  const full = await listen(drain.app);
  completionsUrl = full.url;
  const sampler = setInterval(() => (maxRunning = Math.max(maxRunning, run.running())), 5);
  const ideal = Math.ceil(BURST / BURST_SLOTS) * EXECUTION_SECONDS;
  try {
    const started = performance.now();
    const pushed = await push(full.url, { count: BURST });
    const pushSeconds = (performance.now() - started) / 1000;
    expectAnswers(pushed, 201, `${kind} burst`);
    const timeout = sleep(Math.max(60_000, ideal * 10_000)).then(() => 'timeout' as const);
    if ((await Promise.race([done, timeout])) === 'timeout')
      throw new Error(`${kind} drain: only ${completed} of ${BURST} jobs completed within ${ideal * 10} s`);
    const seconds = (performance.now() - started) / 1000;
    if (failures.length > 0) throw new Error(`${kind} drain: ${failures.slice(0, 3).join('; ')}`);
    await drain.settle();
    const succeeded = await ledger.list({ state: 'SUCCEEDED', limit: BURST + 1 });
    if (succeeded.jobs.length !== BURST)
      throw new Error(`${kind} drain: ${succeeded.jobs.length} of ${BURST} jobs SUCCEEDED`);
    const runJobs = run.requests.filter(isRunJob).length;
    return {
      describe: what,
      seconds,
      ideal,
      pushSeconds,
      refusals: runJobs - run.executions.length,
      maxRunning,
    };
  } finally {
    clearInterval(sampler);
    await close(full.server);
    await run.close();
    await closeGoogleClients();
    await closeLedger();
  }
}

async function coldStarts() {
  const dispatcherScript = path.join(root, 'services/dispatcher/src/index.ts');
  const bareScript = path.join(root, 'bench/bare-express.ts');
  // As deployed, the image carries a compile cache made at build time (see the Dockerfile); the bare
  // app gets one too, so the comparison stays fair. Without caches, the figures are reported as well.
  const caches = fs.mkdtempSync(path.join(os.tmpdir(), 'compile-cache-'));
  const cold = async (cache: boolean) => {
    const [bareCache, dispatcherCache] = cache
      ? [path.join(caches, 'bare'), path.join(caches, 'dispatcher')]
      : [];
    await coldStart(bareScript, bareCache); // warms the page cache, and the compile caches
    await coldStart(dispatcherScript, dispatcherCache);
    const bare: number[] = [];
    const dispatcher: number[] = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      bare.push(await coldStart(bareScript, bareCache));
      dispatcher.push(await coldStart(dispatcherScript, dispatcherCache));
    }
    return { bare: median(bare), dispatcher: median(dispatcher), ratio: median(dispatcher) / median(bare) };
  };
  try {
    return { cached: await cold(true), uncached: await cold(false) };
  } finally {
    fs.rmSync(caches, { recursive: true, force: true });
  }
}

export const DISPATCHER_PARTS = ['cold-start', 'intake', 'drain'] as const;
export type DispatcherPart = (typeof DISPATCHER_PARTS)[number];

export async function benchDispatcher(parts: readonly DispatcherPart[] = DISPATCHER_PARTS): Promise<boolean> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let ok = true;
  out('dispatcher');
  if (parts.includes('cold-start')) {
    const { cached, uncached } = await coldStarts();
    const coldOk = cached.ratio <= 1.3;
    ok &&= coldOk;
    out(
      `  cold start      ${fmt(cached.dispatcher)} to the first /healthz vs ${fmt(cached.bare)} for a bare express app, both with a compile cache as deployed (medians of ${COLD_RUNS}) = ${cached.ratio.toFixed(2)}x (target <= 1.3x) ${coldOk ? 'ok' : 'MISSED'}`,
    );
    out(
      `  without caches  ${fmt(uncached.dispatcher)} vs ${fmt(uncached.bare)} = ${uncached.ratio.toFixed(2)}x`,
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-dispatcher-'));
  const made = ledgers(dir);
  // BENCH_LEDGERS=sqlite measures one ledger only.
  const asked = (process.env.BENCH_LEDGERS ?? 'sqlite,firestore').split(',');
  const installed = emulatorInstalled('firestore');
  const kinds = (['sqlite', 'firestore'] as const).filter(
    (kind) => asked.includes(kind) && (kind !== 'firestore' || installed),
  );
  if (asked.includes('firestore') && !installed)
    out('  (the Firestore emulator of google-cloud-cli is not installed: sqlite only)');
  const stop = () => {
    void made.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  // Cloud Storage as the dispatcher sees it: the output bucket, where each success moves _LATEST.
  const gcs = await startFakeGcs();
  process.env.STORAGE_EMULATOR_HOST = gcs.url;
  try {
    if (parts.includes('intake')) {
      for (const kind of kinds) {
        const f = await measureIntake(kind, made, dir);
        const target =
          f.measured.perSecond >= INTAKE_TARGET.pushesPerSecond && f.measured.p99 < INTAKE_TARGET.p99Ms;
        if (kind === 'sqlite') ok &&= target;
        out(
          `  push intake     ${describe(f.measured)} (${f.measured.pushes} distinct objects in ${INTAKE_ROUNDS} rounds of ${INTAKE_ROUND_SECONDS} s, ${CONCURRENCY} at a time, ${f.describe}; ${f.launched} launched through the real Run client; ${f.logLinesPerPush.toFixed(1)} log lines a push)${kind === 'sqlite' ? ` (target >= ${INTAKE_TARGET.pushesPerSecond}/s, p99 < ${INTAKE_TARGET.p99Ms} ms) ${target ? 'ok' : 'MISSED'}` : ''}`,
        );
        out(
          `    baseline      ${describe(f.baseline)} (express, parse and 204, in rounds alternating with the intake's); intake/baseline: throughput ${(f.measured.perSecond / f.baseline.perSecond).toFixed(2)}x (rounds ${f.ratios[0].toFixed(2)}-${f.ratios.at(-1)!.toFixed(2)}x, median ${median(f.ratios).toFixed(2)}x), p99 ${(f.measured.p99 / f.baseline.p99).toFixed(1)}x, CPU a push ${(f.measured.cpuMsPerPush / f.baseline.cpuMsPerPush).toFixed(1)}x`,
        );
      }
    }
    if (parts.includes('drain')) {
      for (const kind of kinds) {
        const f = await measureDrain(kind, made, dir, 'written');
        out(
          `  drain           ${BURST} pushes, ${BURST_SLOTS} Cloud Run executions, each ${EXECUTION_SECONDS} s: ${f.seconds.toFixed(2)} s to the last SUCCEEDED vs ideal ${f.ideal.toFixed(2)} s = ${(f.seconds / f.ideal).toFixed(2)}x (${f.describe}; pushes answered in ${f.pushSeconds.toFixed(2)} s; at most ${f.maxRunning} running, ${f.refusals} runJob refused)`,
        );
        const without = await measureDrain(kind, made, dir, 'answered at once');
        out(
          `    baseline      the same with each _LATEST write answered at once, no request: ${without.seconds.toFixed(2)} s = ${(without.seconds / without.ideal).toFixed(2)}x the ideal; moving the pointers costs ${(f.seconds / without.seconds).toFixed(2)}x`,
        );
      }
    }
  } finally {
    process.off('SIGINT', stop);
    delete process.env.STORAGE_EMULATOR_HOST;
    await gcs.close();
    await made.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return ok;
}
