// A burst beyond the cloud's capacity, end to end on loopback: 200 uploads (and 40 duplicate
// notifications) published to the Pub/Sub emulator, pushed to the cloud dispatcher through a
// subscription that dead-letters after 5 attempts, the ledger on the Firestore emulator, and
// platforms that refuse what they cannot hold: a Run double that answers 429 beyond 10 executions
// (or beyond 4 runJob calls a second), a Compute double with a vCPU quota. Each execution ends by
// itself after D seconds and its completion is published to the completions topic, as the worker
// and the VM agent publish theirs. Every object must run exactly once, nothing may be dead-lettered,
// and the burst must drain within 1.5 times its ideal (D times the waves capacity allows). The three
// scenarios run at once, each with its own dispatcher, collections, topics and platform doubles, on the
// same two emulators; vitest.config.ts runs this file after the others, alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { PubSub, type Topic } from '@google-cloud/pubsub';
import type { Firestore } from '@google-cloud/firestore';
import { OAuth2Client } from 'google-auth-library';
import { completionAttributes, type CompletionEvent } from '@pipeline/core';
import { parseConfig } from '../../src/config.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
import { createLogger } from '../../src/logger.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { startFakeRun, type FakeRunOptions } from '../../../../test/support/fake-run.ts';
import {
  machineTypeCpus,
  startFakeCompute,
  type FakeComputeOptions,
} from '../../../../test/support/fake-compute.ts';
import { testCloudEnv } from './test-launchers.ts';
import { emulatorFirestore } from '../../../../test/support/firestore-client.ts';

const PROJECT = 'test-project';
const INPUT = 'acme-pipeline-input';
const OBJECTS = 200;
const DUPLICATES = 40;
const SECONDS = 2;

interface Scenario {
  name: string;
  target: 'cloud-run-job' | 'vm';
  env: Record<string, string>;
  run?: FakeRunOptions;
  compute?: FakeComputeOptions;
  /** The ideal drain: D times the waves the platform's capacity allows. */
  idealSeconds: number;
}

describeWithEmulators(['pubsub', 'firestore'], 'a burst beyond capacity waits in the ledger', () => {
  let pubsubEmulator: Emulator;
  let firestoreEmulator: Emulator;
  let pubsub: PubSub;
  let firestore: Firestore;
  let gcs: FakeGcs;

  beforeAll(async () => {
    [pubsubEmulator, firestoreEmulator, gcs] = await Promise.all([
      startEmulator('pubsub', { busy: true }),
      startEmulator('firestore', { busy: true }),
      startFakeGcs(),
    ]);
    // The output bucket, where each success moves its object's _LATEST pointer.
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcs.url);
    pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: pubsubEmulator.host });
    firestore = emulatorFirestore(firestoreEmulator.host, PROJECT);
  }, 120_000);

  afterAll(async () => {
    await pubsub?.close();
    await firestore?.terminate();
    await Promise.all([pubsubEmulator?.stop(), firestoreEmulator?.stop(), gcs?.close()]);
    vi.unstubAllEnvs();
  }, 60_000);

  /** Runs the burst; returns what it measured. */
  async function burst(scenario: Scenario) {
    const { name } = scenario;
    let completions: Topic | undefined;
    const complete = (event: CompletionEvent) => {
      // After the burst the topic is gone (undefined, or deleted: the catch), and executions still end.
      void completions
        ?.publishMessage({
          data: Buffer.from(JSON.stringify(event)),
          attributes: completionAttributes(event),
        })
        .catch(() => {});
    };
    const ended = (jobId: string, attempt: string, startedAt: string) =>
      complete({
        jobId,
        attempt: Number(attempt),
        exitCode: 0,
        startedAt,
        finishedAt: new Date().toISOString(),
        preempted: false,
      });
    const runStarts = new Map<string, string>();
    const run = await startFakeRun({
      executionSeconds: SECONDS,
      ...scenario.run,
      onExecutionEnded: ({ name: execution, env }) =>
        ended(env.JOB_ID, env.ATTEMPT, runStarts.get(execution) ?? new Date().toISOString()),
    });
    const vmRuns: string[] = [];
    let peakCpus = 0;
    const compute = await startFakeCompute({
      ...scenario.compute,
      onInstanceCreated: (instance) => {
        const labels = instance.labels as Record<string, string>;
        const startedAt = new Date().toISOString();
        vmRuns.push(labels['job-id']);
        const cpus = [...compute.instances.values()].reduce(
          (sum, i) => sum + machineTypeCpus(String(i.machineType)),
          0,
        );
        peakCpus = Math.max(peakCpus, cpus);
        setTimeout(() => {
          // The agent publishes its completion, then deletes its VM (which frees its vCPUs).
          ended(labels['job-id'], labels.attempt, startedAt);
          compute.instances.delete(String(instance.name));
        }, SECONDS * 1000);
      },
    });
    const routing = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'burst-')), 'pipeline.config.json');
    fs.writeFileSync(
      routing,
      JSON.stringify({
        rules: [
          {
            name: 'all',
            match: { path: '**' },
            target: scenario.target,
            job: { task: 'logreg', ...(scenario.target === 'vm' ? { machineType: 'e2-standard-2' } : {}) },
          },
        ],
      }),
    );
    const config = parseConfig({
      ...testCloudEnv(),
      PIPELINE_CONFIG: routing,
      RUN_API_ENDPOINT: run.endpoint,
      COMPUTE_API_ENDPOINT: compute.endpoint,
      LEDGER_COLLECTION: `burst-${name}`,
      ...scenario.env,
    });
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    const errors: unknown[] = [];
    const logger = createLogger(
      new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split('\n')) {
            if (line === '') continue;
            const entry = JSON.parse(line);
            if (entry.severity === 'ERROR' || entry.severity === 'CRITICAL') errors.push(entry);
          }
          done();
        },
      }),
    );
    const cloud = buildCloudDispatcher(config, logger, { authClient, firestore: async () => firestore });
    const server: Server = await new Promise((resolve) => {
      const s = cloud.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const [deadLetter] = await pubsub.createTopic(`${name}-dead-letter`);
    const [deadLetters] = await deadLetter.createSubscription(`${name}-dead-letter`);
    let deadLettered = 0;
    deadLetters.on('message', (message: { ack(): void }) => {
      deadLettered++;
      message.ack();
    });
    const [uploads] = await pubsub.createTopic(`${name}-uploads`);
    await uploads.createSubscription(`${name}-uploads-push`, {
      pushConfig: { pushEndpoint: `${url}/pubsub/push` },
      ackDeadlineSeconds: 10,
      // The emulator keeps the dead-letter policy (5 attempts); it ignores the retry policy when
      // several messages are refused.
      deadLetterPolicy: { deadLetterTopic: deadLetter.name, maxDeliveryAttempts: 5 },
      retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 5 } },
    });
    [completions] = await pubsub.createTopic(`${name}-completions`);
    await completions.createSubscription(`${name}-completions-push`, {
      pushConfig: { pushEndpoint: `${url}/pubsub/completions` },
      ackDeadlineSeconds: 10,
    });
    // Cloud Scheduler's reconcile pass, every minute as shipped.
    const reconciler = setInterval(() => void cloud.reconciler.pass().catch(() => {}), 60_000);

    const started = Date.now();
    const notify = (n: number) => {
      const objectName = `burst/${name}/file-${n}.csv`;
      const resource = {
        bucket: INPUT,
        name: objectName,
        generation: String(1000 + n),
        size: '100',
        contentType: 'text/csv',
      };
      return uploads.publishMessage({
        data: Buffer.from(JSON.stringify(resource)),
        attributes: {
          bucketId: INPUT,
          objectId: objectName,
          objectGeneration: resource.generation,
          eventType: 'OBJECT_FINALIZE',
          payloadFormat: 'JSON_API_V1',
        },
      });
    };
    const order = [
      ...Array.from({ length: OBJECTS }, (_, n) => n),
      ...Array.from({ length: DUPLICATES }, (_, n) => n * 5),
    ];
    await Promise.all(order.map(notify));

    const jobs = firestore.collection(`burst-${name}`);
    let succeeded = 0;
    const deadline = started + scenario.idealSeconds * 3 * 1000;
    while (Date.now() < deadline) {
      succeeded = (await jobs.where('state', '==', 'SUCCEEDED').count().get()).data().count;
      if (succeeded === OBJECTS) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const drainSeconds = (Date.now() - started) / 1000;
    if (succeeded < OBJECTS) {
      // What stalled, for whoever reads the failure: the states, the capacity record, the queue's head.
      const states: Record<string, number> = {};
      for (const doc of (await jobs.get()).docs)
        states[doc.get('state')] = (states[doc.get('state')] ?? 0) + 1;
      const record = await firestore.collection(`burst-${name}-capacity`).doc('record').get();
      process.stdout.write(
        `stalled: states ${JSON.stringify(states)} running ${run.running()} record ${JSON.stringify({ holders: record.get('holders')?.length, ceilings: record.get('ceilings'), version: record.get('version') })}\n`,
      );
      const stuck = (await jobs.where('state', '==', 'QUEUED').limit(2).get()).docs.map((d) => d.data());
      process.stdout.write(
        `stalled: queued ${JSON.stringify(stuck.map((j) => ({ q: j.queue, h: j.history })))}\n`,
      );
      const view = await fetch(`${url}/capacity`).then((r) => r.json());
      process.stdout.write(`stalled: capacity ${JSON.stringify(view).slice(0, 1500)}\n`);
    }
    clearInterval(reconciler);

    const all = (await jobs.get()).docs.map((doc) => doc.data());
    const executions = scenario.target === 'vm' ? vmRuns : run.executionJobIds();
    const perJob = new Map<string, number>();
    for (const id of executions) perJob.set(id, (perJob.get(id) ?? 0) + 1);

    await uploads
      .subscription(`${name}-uploads-push`)
      .delete()
      .catch(() => {});
    await completions
      .subscription(`${name}-completions-push`)
      .delete()
      .catch(() => {});
    completions = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 10_000).unref();
    });
    await cloud.close();
    await Promise.all([run.close(), compute.close()]);
    return {
      succeeded,
      jobs: all,
      drainSeconds,
      deadLettered,
      perJob,
      peak: scenario.target === 'vm' ? peakCpus : run.peakRunning(),
      refusals:
        scenario.target === 'vm'
          ? compute.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances')).length -
            vmRuns.length
          : run.refusedRunJobs(),
      errors,
    };
  }

  function expectExactlyOnce(result: Awaited<ReturnType<typeof burst>>, scenario: Scenario, peak: number) {
    process.stdout.write(
      `burst ${scenario.name}: ${result.succeeded} of ${OBJECTS} in ${result.drainSeconds.toFixed(1)} s (ideal ${scenario.idealSeconds} s, ${(result.drainSeconds / scenario.idealSeconds).toFixed(2)}x), peak ${result.peak}, ${result.refusals} refusals, ${result.deadLettered} dead-lettered\n`,
    );
    expect(result.errors).toEqual([]);
    expect(result.succeeded).toBe(OBJECTS);
    expect(result.jobs).toHaveLength(OBJECTS);
    const notOnce = result.jobs.filter((job) => result.perJob.get(job.id) !== 1);
    if (notOnce.length > 0) {
      // Which jobs did not run exactly once, and what the ledger says they went through.
      for (const job of notOnce.slice(0, 5))
        process.stdout.write(
          `burst ${scenario.name}: job ${job.id} ran ${result.perJob.get(job.id) ?? 0} times: ${JSON.stringify({ state: job.state, execution: job.execution, attempts: job.attempts, history: job.history })}\n`,
        );
    }
    expect(notOnce.map((job) => job.id)).toEqual([]);
    expect(result.perJob.size).toBe(OBJECTS);
    expect([...result.perJob.values()].every((n) => n === 1)).toBe(true);
    expect(result.jobs.every((job) => job.attempt === 1)).toBe(true);
    expect(result.deadLettered).toBe(0);
    expect(result.peak).toBeLessThanOrEqual(peak);
    expect(result.drainSeconds).toBeLessThanOrEqual(scenario.idealSeconds * 1.5);
  }

  it.concurrent(
    'Cloud Run refusing with 429 beyond 10 executions: all 200 run once, none dead-lettered',
    async () => {
      const scenario: Scenario = {
        name: 'run-executions',
        target: 'cloud-run-job',
        // The configured limit is the default 900: the queue learns the 10 from the refusals.
        env: { RUN_JOBS_PER_MINUTE: '100000' },
        run: { maxRunning: 10 },
        idealSeconds: (OBJECTS / 10) * SECONDS,
      };
      expectExactlyOnce(await burst(scenario), scenario, 10);
    },
    180_000,
  );

  it.concurrent(
    'VMs under a 20 vCPU quota (10 VMs of 2): all 200 run once, none dead-lettered',
    async () => {
      const scenario: Scenario = {
        name: 'vm-quota',
        target: 'vm',
        env: {},
        compute: { cpuQuota: 20 },
        idealSeconds: (OBJECTS / 10) * SECONDS,
      };
      expectExactlyOnce(await burst(scenario), scenario, 20);
    },
    180_000,
  );

  it.concurrent(
    'Cloud Run refusing beyond 4 runJob calls a second: all 200 run once, none dead-lettered',
    async () => {
      // 4 a second is below the 5 a second that 10 executions of 2 s allow, so the rate is what binds.
      const scenario: Scenario = {
        name: 'run-rate',
        target: 'cloud-run-job',
        env: { RUN_JOBS_PER_MINUTE: '240' },
        run: { maxRunning: 10, runJobsPerSecond: 4 },
        idealSeconds: OBJECTS / 4,
      };
      expectExactlyOnce(await burst(scenario), scenario, 10);
    },
    240_000,
  );
});
