// The dispatcher in cloud mode, end to end on loopback: a real Pub/Sub topic and push subscription
// (the emulator) delivering to the dispatcher, the ledger on the Firestore emulator, and the real Run
// and Compute clients talking to loopback REST doubles.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PubSub, type Topic } from '@google-cloud/pubsub';
import type { Firestore } from '@google-cloud/firestore';
import { OAuth2Client } from 'google-auth-library';
import { jobIdFor, type Job } from '@pipeline/core';
import { parseConfig } from '../../src/config.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
import { createLogger } from '../../src/logger.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { googleError, startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { testCloudEnv } from './test-launchers.ts';
import { until } from '../../../../test/support/until.ts';
import { emulatorFirestore } from '../../../../test/support/firestore-client.ts';

const PROJECT = 'test-project';
const INPUT = 'acme-pipeline-input';
const FIXTURE = JSON.parse(
  fs.readFileSync(
    path.resolve(
      import.meta.dirname,
      '../../../../packages/core/test/fixtures/gcs-object-finalize.object.json',
    ),
    'utf8',
  ),
);
const HOSTILE = `in/we"ird 'q' $(touch /tmp/pwned) \`id\`;\nnext ünïcødé 名前/${'x'.repeat(1000)}.csv`;

describeWithEmulators(['pubsub', 'firestore'], 'push intake on the Pub/Sub and Firestore emulators', () => {
  let pubsubEmulator: Emulator;
  let firestoreEmulator: Emulator;
  let run: FakeRun;
  let compute: FakeCompute;
  let server: Server;
  let pubsub: PubSub;
  let topic: Topic;
  let completionsTopic: Topic;
  let firestore: Firestore;
  let close: () => Promise<void>;
  const logs: Record<string, unknown>[] = [];
  /** The dispatcher's answers to Pub/Sub's pushes of uploads: the HTTP status and the job's id. */
  const pushAnswers: { status: number; id?: string }[] = [];

  function recordPushAnswer(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST' || req.url !== '/pubsub/push') return;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      let id: string | undefined;
      try {
        id = (JSON.parse(String(args[0])) as { id?: string }).id;
      } catch {
        // no JSON body (a 204)
      }
      pushAnswers.push({ status: res.statusCode, id });
      return end(...args);
    }) as ServerResponse['end'];
  }

  beforeAll(async () => {
    [pubsubEmulator, firestoreEmulator, run, compute] = await Promise.all([
      startEmulator('pubsub'),
      startEmulator('firestore'),
      startFakeRun(),
      startFakeCompute(),
    ]);
    const routing = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'routing-')), 'pipeline.config.json');
    fs.writeFileSync(
      routing,
      JSON.stringify({
        rules: [
          {
            name: 'big',
            match: { minSize: '1GiB' },
            target: 'vm',
            job: { task: 'logreg', spot: true, timeout: '2h' },
          },
          {
            name: 'csv',
            match: { path: '**' },
            target: 'cloud-run-job',
            job: { task: 'logreg', timeout: '1h' },
          },
        ],
      }),
    );
    const config = parseConfig({
      ...testCloudEnv(),
      PIPELINE_CONFIG: routing,
      RUN_API_ENDPOINT: run.endpoint,
      COMPUTE_API_ENDPOINT: compute.endpoint,
      // Not about the rate (burst.test.ts is): a launch each test waits for goes at once.
      RUN_JOBS_PER_MINUTE: '100000',
    });
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    firestore = emulatorFirestore(firestoreEmulator.host, PROJECT);
    const logger = createLogger(
      new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split('\n')) if (line !== '') logs.push(JSON.parse(line));
          done();
        },
      }),
    );
    const cloud = buildCloudDispatcher(config, logger, { authClient, firestore: async () => firestore });
    close = cloud.close;
    server = await new Promise((resolve) => {
      const s = cloud.app.listen(0, '127.0.0.1', () => resolve(s));
      // Before the app, so that every answer to a push is seen: a 2xx answer is an acknowledgement.
      s.prependListener('request', recordPushAnswer);
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: pubsubEmulator.host });
    [topic] = await pubsub.createTopic('uploads');
    await topic.createSubscription('uploads-push', {
      pushConfig: { pushEndpoint: `${url}/pubsub/push` },
      ackDeadlineSeconds: 10,
      retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 2 } },
    });
    [completionsTopic] = await pubsub.createTopic('completions');
    await completionsTopic.createSubscription('completions-push', {
      pushConfig: { pushEndpoint: `${url}/pubsub/completions` },
      ackDeadlineSeconds: 10,
    });
  }, 120_000);

  afterAll(async () => {
    // Stop the pushes first, then the server, and only then the clients the server uses.
    await pubsub
      ?.subscription('uploads-push')
      .delete()
      .catch(() => {});
    await pubsub?.close();
    await new Promise<void>((resolve) => {
      if (server === undefined) return resolve();
      // Requests in flight finish first (they use Firestore, which is closed next); idle ones close now.
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 20_000).unref();
    });
    await close?.();
    await firestore?.terminate();
    await Promise.all([pubsubEmulator?.stop(), firestoreEmulator?.stop(), run?.close(), compute?.close()]);
  }, 60_000);

  /** Publishes a notification shaped like the fixture for an object. */
  async function notify(object: { name: string; generation: string; size?: string }): Promise<void> {
    const resource = { ...FIXTURE, bucket: INPUT, ...object };
    await topic.publishMessage({
      data: Buffer.from(JSON.stringify(resource)),
      attributes: {
        bucketId: INPUT,
        objectId: object.name,
        objectGeneration: object.generation,
        eventType: 'OBJECT_FINALIZE',
        payloadFormat: 'JSON_API_V1',
        notificationConfig: `projects/_/buckets/${INPUT}/notificationConfigs/1`,
      },
    });
  }

  const runsFor = (jobId: string) =>
    run.requests.filter((r) => JSON.stringify(r.body).includes(jobId) && r.path.endsWith(':run'));
  const envOf = (body: unknown) =>
    Object.fromEntries(
      (
        body as { overrides: { containerOverrides: { env: { name: string; value: string }[] }[] } }
      ).overrides.containerOverrides[0].env.map((e) => [e.name, e.value]),
    );
  const logsAbout = (jobId: string, message: string) =>
    logs.filter((l) => l.jobId === jobId && l.message === message);

  it('turns a published notification into one runJob with exactly the worker environment', async () => {
    await notify({ name: 'statements/q3.csv', generation: '101', size: '2048' });
    const id = jobIdFor(INPUT, 'statements/q3.csv', '101');
    const [sent] = await until(() => (runsFor(id).length > 0 ? runsFor(id) : undefined));
    expect(sent.path).toBe(`/v2/projects/${PROJECT}/locations/us-central1/jobs/pipeline-worker:run`);
    expect(envOf(sent.body)).toEqual({
      ATTEMPT: '1',
      INPUT_GENERATION: '101',
      INPUT_URI: `gs://${INPUT}/statements/q3.csv`,
      JOB_ID: id,
      LOGS_URI: 'gs://acme-pipeline-output/statements/q3.csv/101/logs/attempt-1.log',
      OUTPUT_URI: 'gs://acme-pipeline-output/statements/q3.csv/101/',
      TASK: 'logreg',
    });
    const job = await until(async () => {
      const stored = (await (
        await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jobs/${id}`)
      ).json()) as Job;
      return stored.execution !== undefined ? stored : undefined;
    });
    expect(job).toMatchObject({ state: 'LAUNCHED', target: 'cloud-run-job', rule: 'csv' });
    expect(job.execution).toMatch(
      /^projects\/test-project\/locations\/us-central1\/jobs\/pipeline-worker\/executions\//,
    );
  });

  it('records the completion a task publishes, delivered by push to /pubsub/completions', async () => {
    const id = jobIdFor(INPUT, 'statements/q3.csv', '101');
    await completionsTopic.publishMessage({
      json: {
        jobId: id,
        attempt: 1,
        exitCode: 0,
        startedAt: '2026-11-22T04:00:00.000Z',
        finishedAt: '2026-11-22T04:01:00.000Z',
      },
    });
    const doc = await until(async () => {
      const snapshot = await firestore.collection('jobs').doc(id).get();
      return snapshot.get('state') === 'SUCCEEDED' ? snapshot : undefined;
    });
    expect(doc.get('exitCode')).toBe(0);
  });

  it('launches once for the same notification published 20 times, some at once', async () => {
    const object = { name: 'statements/dup.csv', generation: '202', size: '10' };
    const id = jobIdFor(INPUT, object.name, object.generation);
    for (let i = 0; i < 10; i++) await notify(object);
    await Promise.all(Array.from({ length: 10 }, () => notify(object)));
    await until(() =>
      logsAbout(id, 'duplicate delivery: the job exists, nothing launched').length >= 19 ? true : undefined,
    );
    expect(runsFor(id)).toHaveLength(1);
  });

  it('sends a large file to one Compute insert with spot, maxRunDuration, DELETE, labels and the task', async () => {
    const object = { name: 'big/huge.csv', generation: '303', size: String(5 * 2 ** 30) };
    const id = jobIdFor(INPUT, object.name, object.generation);
    await notify(object);
    await notify(object);
    const inserts = () =>
      compute.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances'));
    const [insert] = await until(() => (inserts().length > 0 ? inserts() : undefined));
    await until(() =>
      logsAbout(id, 'duplicate delivery: the job exists, nothing launched').length >= 1 ? true : undefined,
    );
    expect(inserts()).toHaveLength(1);
    const body = insert.body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(insert.path).toBe(`/compute/v1/projects/${PROJECT}/zones/us-central1-a/instances`);
    expect(body.labels).toEqual({ pipeline: 'true', 'job-id': id, attempt: '1' });
    expect(body.scheduling).toMatchObject({
      provisioningModel: 'SPOT',
      instanceTerminationAction: 'DELETE',
      maxRunDuration: { seconds: String(7200 + 600) },
    });
    const items = Object.fromEntries(
      (body.metadata.items as { key: string; value: string }[]).map((i) => [i.key, i.value]),
    );
    const task = JSON.parse(items['pipeline-task']);
    expect(task).toMatchObject({
      jobId: id,
      attempt: 1,
      env: { INPUT_URI: `gs://${INPUT}/big/huge.csv`, INPUT_GENERATION: '303' },
    });
  });

  it('acknowledges a job Run refused with 429, keeps it QUEUED, and launches it once after its backoff', async () => {
    const object = { name: 'statements/busy.csv', generation: '404', size: '10' };
    const id = jobIdFor(INPUT, object.name, object.generation);
    run.failNext(
      1,
      googleError(429, 'Quota exceeded for quota metric run.googleapis.com/job_runs per minute'),
    );
    await notify(object);
    const queued = await until(async () => {
      const snapshot = await firestore.collection('jobs').doc(id).get();
      return snapshot.get('state') === 'QUEUED' && snapshot.get('queue.refusals') === 1
        ? snapshot
        : undefined;
    });
    expect(String(queued.get('queue.reason'))).toContain('429');
    // The next drain after its backoff (2 s, recorded as queue.notBefore; here: another upload's
    // push) launches it.
    const notBefore = Date.parse(String(queued.get('queue.notBefore')));
    expect(notBefore - Date.parse(String(queued.get('queue.queuedAt')))).toBeGreaterThanOrEqual(2000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, notBefore - Date.now()) + 50));
    await notify({ name: 'statements/after-busy.csv', generation: '405', size: '10' });
    const after = jobIdFor(INPUT, 'statements/after-busy.csv', '405');
    // Both launched before the next test tells Run to refuse its next call.
    await until(() => (logsAbout(id, 'job launched').length > 0 ? true : undefined));
    await until(() => (logsAbout(after, 'job launched').length > 0 ? true : undefined));
    expect(runsFor(id)).toHaveLength(2); // the refused one, then the launch
    const doc = await firestore.collection('jobs').doc(id).get();
    expect(doc.get('state')).toBe('LAUNCHED');
    expect(doc.get('attempt')).toBe(1);
  });

  it('marks a job FAILED when Run says 400, and acknowledges it', async () => {
    const object = { name: 'statements/bad.csv', generation: '505', size: '10' };
    const id = jobIdFor(INPUT, object.name, object.generation);
    run.failNext(1, googleError(400, 'Invalid value for timeout'));
    await notify(object);
    const doc = await until(async () => {
      const snapshot = await firestore.collection('jobs').doc(id).get();
      return snapshot.get('state') === 'FAILED' ? snapshot : undefined;
    });
    expect(String(doc.get('error'))).toContain('Invalid value for timeout');
    // Acknowledged: the push was answered 2xx, and Pub/Sub delivers an acknowledged message no more.
    const answers = () => pushAnswers.filter((a) => a.id === id).map((a) => a.status);
    await until(() => (answers().length > 0 ? true : undefined));
    expect(answers()).toEqual([201]);
    // Delivered again all the same (at least once): a duplicate, answered 2xx, and nothing launched.
    await notify(object);
    await until(() =>
      logsAbout(id, 'duplicate delivery: the job exists, nothing launched').length > 0 ? true : undefined,
    );
    await until(() => (answers().length > 1 ? true : undefined));
    expect(answers()).toEqual([201, 200]);
    expect(runsFor(id)).toHaveLength(1);
  });

  it('carries a hostile object name byte-exact into the Run env and the VM metadata', async () => {
    await notify({ name: HOSTILE, generation: '606', size: '10' });
    await notify({ name: HOSTILE, generation: '607', size: String(2 * 2 ** 30) });
    const small = jobIdFor(INPUT, HOSTILE, '606');
    const big = jobIdFor(INPUT, HOSTILE, '607');
    const [sent] = await until(() => (runsFor(small).length > 0 ? runsFor(small) : undefined));
    expect(envOf(sent.body).INPUT_URI).toBe(`gs://${INPUT}/${HOSTILE}`);
    expect(envOf(sent.body).OUTPUT_URI).toBe(`gs://acme-pipeline-output/${HOSTILE}/606/`);
    const insert = await until(() =>
      compute.requests.find((r) => r.method === 'POST' && JSON.stringify(r.body).includes(big)),
    );
    const items = (insert.body as { metadata: { items: { key: string; value: string }[] } }).metadata.items;
    const task = JSON.parse(items.find((i) => i.key === 'pipeline-task')!.value);
    expect(task.env.INPUT_URI).toBe(`gs://${INPUT}/${HOSTILE}`);
    expect(items.find((i) => i.key === 'startup-script')!.value).not.toContain('pwned');
  });
});
