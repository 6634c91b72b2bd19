// Batching end to end on the Pub/Sub and Firestore emulators: 120 small uploads under a rule with
// `"batch": { "maxFiles": 50, "maxWait": "10s" }` reach a cloud dispatcher (the real Pub/Sub,
// Firestore and Storage clients; the Run client against its loopback double), which gathers them
// into executions of many tasks. Each task is the real worker (its `main`, in this process), given
// what Cloud Run gives a task (CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT, CLOUD_RUN_EXECUTION) and
// the execution's env; it reads its entry of the batch manifest from the Storage double, writes its
// outputs and _SUCCESS there, and publishes its completion to the emulator's completions topic,
// which this test delivers to the dispatcher as the push subscription would. One task is killed
// before it does anything (as an out-of-memory kill would: signal 9, no completion): the reconciler
// reads its exit from the task and retries that job alone.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import type { Firestore } from '@google-cloud/firestore';
import { OAuth2Client } from 'google-auth-library';
import { batchManifestName, jobIdFor, parseBatchManifest, type Job } from '@pipeline/core';
import { parseConfig } from '../../src/config.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
import { createLogger } from '../../src/logger.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { startFakeRun, type FakeRun, type StartedExecution } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { runWorkerInProcess } from '../../../../test/support/run-worker.ts';
import { until } from '../../../../test/support/until.ts';
import { emulatorFirestore } from '../../../../test/support/firestore-client.ts';
import { testCloudEnv } from './test-launchers.ts';

const PROJECT = 'test-project';
const INPUT = 'acme-pipeline-input';
const OUTPUT = 'acme-pipeline-output';
const COMPLETIONS = 'completions';
const FILES = 120;
const MAX_FILES = 50;

describeWithEmulators(['pubsub', 'firestore'], 'batching on the Pub/Sub and Firestore emulators', () => {
  let pubsubEmulator: Emulator;
  let firestoreEmulator: Emulator;
  let run: FakeRun;
  let compute: FakeCompute;
  let gcs: FakeGcs;
  let pubsub: PubSub;
  let completions: Subscription;
  let firestore: Firestore;
  let dispatcher: Awaited<ReturnType<typeof startDispatcher>>;
  const started: StartedExecution[] = [];
  const tasksRun: { execution: string; index: number; jobId: string; exitCode: number }[] = [];
  /** The job whose first task is killed. */
  let victim = '';
  const logger = createLogger(new Writable({ write: (_chunk, _encoding, done) => done() }));

  async function startDispatcher(routing: string) {
    const config = parseConfig({
      ...testCloudEnv(),
      PIPELINE_CONFIG: routing,
      RUN_API_ENDPOINT: run.endpoint,
      COMPUTE_API_ENDPOINT: compute.endpoint,
      RUN_JOBS_PER_MINUTE: '100000',
      LEDGER_COLLECTION: 'jobs-batching-test',
      COMPLETIONS_TOPIC: COMPLETIONS,
    });
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    const cloud = buildCloudDispatcher(config, logger, {
      authClient,
      firestore: async () => firestore,
      pubsub: { apiEndpoint: pubsubEmulator.host },
    });
    const server: Server = await new Promise((resolve) => {
      const s = cloud.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      ...cloud,
      url,
      async close() {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await cloud.close();
      },
    };
  }

  /** The tasks of one execution, one after another (the worker's main patches process output). */
  let tasks: Promise<unknown> = Promise.resolve();
  function host(execution: StartedExecution): void {
    tasks = tasks.then(async () => {
      const manifestUri = execution.env.BATCH_MANIFEST_URI;
      const manifest =
        manifestUri === undefined
          ? undefined
          : parseBatchManifest(
              JSON.parse(gcs.get(OUTPUT, batchManifestName(execution.env.BATCH_ID!))!.body.toString('utf8')),
            );
      for (let index = 0; index < execution.taskCount; index++) {
        const jobId = manifest?.tasks[index]?.jobId ?? execution.env.JOB_ID ?? '';
        const attempt = manifest?.tasks[index]?.attempt ?? Number(execution.env.ATTEMPT);
        if (jobId === victim && attempt === 1) {
          // Killed before it did anything: no outputs, no completion; Cloud Run reports the signal.
          tasksRun.push({ execution: execution.name, index, jobId, exitCode: 137 });
          run.settleTask(execution.name, index, {
            phase: 'failed',
            termSignal: 9,
            message: 'Container killed: out of memory',
          });
          continue;
        }
        const result = await runWorkerInProcess([], {
          ...execution.env,
          COMPLETIONS_TOPIC: COMPLETIONS,
          GOOGLE_CLOUD_PROJECT: PROJECT,
          PUBSUB_EMULATOR_HOST: pubsubEmulator.host,
          STORAGE_EMULATOR_HOST: gcs.url,
          CLOUD_RUN_EXECUTION: execution.name.split('/').at(-1)!,
          CLOUD_RUN_TASK_INDEX: String(index),
          CLOUD_RUN_TASK_COUNT: String(execution.taskCount),
        });
        const exitCode = result.code ?? 1;
        tasksRun.push({ execution: execution.name, index, jobId, exitCode });
        run.settleTask(
          execution.name,
          index,
          exitCode === 0 ? { phase: 'succeeded' } : { phase: 'failed', exitCode, message: result.stderr },
        );
      }
    });
  }

  beforeAll(async () => {
    [pubsubEmulator, firestoreEmulator, run, compute, gcs] = await Promise.all([
      startEmulator('pubsub'),
      startEmulator('firestore'),
      startFakeRun({
        onExecutionStarted: (execution) => {
          started.push(execution);
          host(execution);
        },
      }),
      startFakeCompute(),
      startFakeGcs(),
    ]);
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcs.url);
    vi.stubEnv('PUBSUB_EMULATOR_HOST', pubsubEmulator.host);
    const routing = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'routing-')), 'pipeline.config.json');
    fs.writeFileSync(
      routing,
      JSON.stringify({
        rules: [
          {
            name: 'small',
            match: { path: 'small/**' },
            target: 'cloud-run-job',
            job: { task: 'logreg', timeout: '10m' },
            retry: { maxAttempts: 2, backoff: '1s' },
            batch: { maxFiles: MAX_FILES, maxWait: '10s', maxBytes: '1GiB' },
          },
        ],
      }),
    );
    firestore = emulatorFirestore(firestoreEmulator.host, PROJECT);
    pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: pubsubEmulator.host });
    const [topic] = await pubsub.createTopic(COMPLETIONS);
    [completions] = await topic.createSubscription('completions-push', { ackDeadlineSeconds: 60 });
    dispatcher = await startDispatcher(routing);
    // What the push subscription does: each completion to /pubsub/completions, acked on a 2xx.
    completions.on('message', (message: Message) => {
      const body = {
        message: {
          data: message.data.toString('base64'),
          attributes: message.attributes,
          messageId: message.id,
        },
        subscription: `projects/${PROJECT}/subscriptions/completions-push`,
      };
      void post(`${dispatcher.url}/pubsub/completions`, body).then(
        ({ status }) => (status < 300 ? message.ack() : message.nack()),
        () => message.nack(),
      );
    });
  }, 120_000);

  afterAll(async () => {
    await completions?.close();
    await dispatcher?.close();
    await tasks;
    await pubsub?.close();
    await firestore?.terminate();
    await Promise.all([
      pubsubEmulator?.stop(),
      firestoreEmulator?.stop(),
      run?.close(),
      compute?.close(),
      gcs?.close(),
    ]);
    vi.unstubAllEnvs();
  }, 60_000);

  it(`runs ${FILES} small files in at most 3 executions, each file its own outputs, a failed task retried alone`, async () => {
    const names = Array.from({ length: FILES }, (_, i) => `small/part ${String(i).padStart(3, '0')}.csv`);
    const generations = names.map(
      (name, i) => gcs.put(INPUT, name, csv(20, i + 1), { contentType: 'text/csv' }).generation,
    );
    const ids = names.map((name, i) => jobIdFor(INPUT, name, generations[i]!));
    victim = ids[77]!;
    // A burst, as `gcloud storage cp` of a folder makes one: eight uploads at a time.
    const statuses: number[] = [];
    const next = { i: 0 };
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = next.i++; i < FILES; i = next.i++) {
          const size = csv(20, i + 1).length;
          statuses.push(
            (await post(`${dispatcher.url}/pubsub/push`, upload(names[i]!, generations[i]!, size))).status,
          );
        }
      }),
    );
    expect(statuses.filter((status) => status !== 201)).toEqual([]);
    // Cloud Scheduler's reconcile, faster: it launches the batch that waited its maxWait, closes
    // the killed task's attempt from what Cloud Run says of the task, and launches its retry.
    const jobs = await until(
      async () => {
        await post(`${dispatcher.url}/reconcile`, {});
        const all = await Promise.all(ids.map((id) => dispatcher.ledger.get(id)));
        return all.every((job) => job?.state === 'SUCCEEDED') ? (all as Job[]) : undefined;
      },
      120_000,
      'every job SUCCEEDED',
      1_000,
    );

    // The 120 files' first attempts ran in 3 executions: two closed at 50 files, the last at its
    // maxWait. The killed task's retry is a new attempt of that job only, gathered with whatever
    // was queued then (the last batch, if it had not closed yet) or run alone.
    const firstRuns = new Map<string, number>();
    for (const job of jobs) {
      const first = job.attempts.find((a) => a.attempt === 1)!;
      firstRuns.set(first.execution!, (firstRuns.get(first.execution!) ?? 0) + 1);
    }
    expect(
      [...firstRuns.values()].sort((a, b) => b - a),
      'first attempts per execution',
    ).toEqual([50, 50, 20]);
    expect(started.reduce((sum, e) => sum + e.taskCount, 0)).toBe(FILES + 1);
    for (const execution of started.filter((e) => e.taskCount > 1)) {
      expect(execution.taskCount).toBeLessThanOrEqual(MAX_FILES);
      expect(execution.env.JOB_ID).toBeUndefined();
      expect(execution.env.BATCH_MANIFEST_URI).toBe(
        `gs://${OUTPUT}/${batchManifestName(execution.env.BATCH_ID!)}`,
      );
    }

    for (const [i, job] of jobs.entries()) {
      const prefix = `${names[i]}/${generations[i]}/`;
      // Each object: its own outputs and _SUCCESS, naming its own job and the attempt that made them.
      const success = JSON.parse(gcs.get(OUTPUT, `${prefix}_SUCCESS`)!.body.toString('utf8')) as Record<
        string,
        unknown
      >;
      expect(success, names[i]).toMatchObject({ jobId: job.id, attempt: job.attempt });
      expect(gcs.get(OUTPUT, `${prefix}predictions.csv`), names[i]).toBeDefined();
      expect(gcs.get(OUTPUT, `${prefix}logs/attempt-${job.attempt}.log`), names[i]).toBeDefined();
      expect(job.attempt, names[i]).toBe(job.id === victim ? 2 : 1);
      const first = job.attempts.find((a) => a.attempt === 1)!;
      const execution = started.find((e) => e.name === first.execution)!;
      expect(first.batch, names[i]).toEqual({
        id: execution.env.BATCH_ID,
        index: expect.any(Number),
        size: execution.taskCount,
      });
    }
    // Every file's task ran once, the killed one's twice, in two executions; nothing else ran again.
    const runsOf = (jobId: string) => tasksRun.filter((t) => t.jobId === jobId);
    for (const id of ids) expect(runsOf(id).length, id).toBe(id === victim ? 2 : 1);
    const killed = jobs.find((job) => job.id === victim)!;
    expect(killed.attempts[0]).toMatchObject({ outcome: 'failed', exitCode: 137 });
    expect(killed.attempts[1]!.execution).not.toBe(killed.attempts[0]!.execution);
    expect(runsOf(victim).map((t) => t.exitCode)).toEqual([137, 0]);
    // The batches' slots were all given back.
    expect((await dispatcher.ledger.readCapacity()).holders).toEqual([]);
  }, 180_000);
});

/** `rows` rows of two numeric features and a 0/1 label. */
function csv(rows: number, seed: number): string {
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lines = ['x1,x2,label'];
  for (let i = 0; i < rows; i++) {
    const [x1, x2] = [random() * 10 - 5, random() * 4 - 2];
    lines.push(`${x1.toFixed(3)},${x2.toFixed(2)},${x1 + 2 * x2 > 0 ? 1 : 0}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A POST as Pub/Sub's push or Cloud Scheduler sends it. */
function post(url: string, body: unknown): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}

/** A Cloud Storage notification of a new object version, as the uploads subscription pushes it. */
function upload(name: string, generation: string, size: number) {
  const object = {
    kind: 'storage#object',
    bucket: INPUT,
    name,
    generation,
    size: String(size),
    contentType: 'text/csv',
    timeCreated: new Date().toISOString(),
  };
  const attributes = {
    bucketId: INPUT,
    objectId: name,
    objectGeneration: generation,
    eventType: 'OBJECT_FINALIZE',
    payloadFormat: 'JSON_API_V1',
  };
  return {
    message: {
      data: Buffer.from(JSON.stringify(object)).toString('base64'),
      attributes,
      messageId: generation,
    },
    subscription: `projects/${PROJECT}/subscriptions/uploads-push`,
  };
}
