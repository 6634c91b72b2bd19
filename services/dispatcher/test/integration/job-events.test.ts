// Job events end to end on the Pub/Sub and Firestore emulators: a cloud dispatcher (the real Pub/Sub
// and Firestore clients, the Run client against its loopback double) takes pushes and completions,
// and every transition of every job reaches the job-events topic, read here from a pull
// subscription. Then a dispatcher whose publishes fail after its ledger writes (as one killed between
// the two would leave things) leaves the events in the outbox, and a fresh dispatcher's next request
// publishes them, with the same event ids.
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
import { jobIdFor, parseJobEvent, type Job, type JobEvent } from '@pipeline/core';
import { parseConfig } from '../../src/config.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
import { createLogger } from '../../src/logger.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { testCloudEnv } from './test-launchers.ts';
import { emulatorFirestore } from '../../../../test/support/firestore-client.ts';

const PROJECT = 'test-project';
const INPUT = 'acme-pipeline-input';
const TOPIC = 'job-events';
const COLLECTION = 'jobs-events-test';
const FIXTURE = JSON.parse(
  fs.readFileSync(
    path.resolve(
      import.meta.dirname,
      '../../../../packages/core/test/fixtures/gcs-object-finalize.object.json',
    ),
    'utf8',
  ),
) as Record<string, unknown>;

interface Received {
  event: JobEvent;
  attributes: Record<string, string>;
}

describeWithEmulators(['pubsub', 'firestore'], 'job events on the Pub/Sub and Firestore emulators', () => {
  let pubsubEmulator: Emulator;
  let firestoreEmulator: Emulator;
  let run: FakeRun;
  let compute: FakeCompute;
  let gcs: FakeGcs;
  let pubsub: PubSub;
  let subscription: Subscription;
  let firestore: Firestore;
  let routing: string;
  const received: Received[] = [];
  const logs: Record<string, unknown>[] = [];
  const dispatchers: { close(): Promise<void> }[] = [];

  const logger = createLogger(
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line !== '') logs.push(JSON.parse(line));
        done();
      },
    }),
  );

  /** A cloud dispatcher on the shared ledger, publishing to `topic`, listening on loopback. */
  async function startDispatcher(topic: string) {
    const config = parseConfig({
      ...testCloudEnv(),
      PIPELINE_CONFIG: routing,
      RUN_API_ENDPOINT: run.endpoint,
      COMPUTE_API_ENDPOINT: compute.endpoint,
      RUN_JOBS_PER_MINUTE: '100000',
      LEDGER_COLLECTION: COLLECTION,
      JOB_EVENTS_TOPIC: topic,
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
    let closed = false;
    const stopped = {
      async close() {
        if (closed) return;
        closed = true;
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await cloud.close();
      },
    };
    dispatchers.push(stopped);
    return { ...cloud, url, ...stopped };
  }

  beforeAll(async () => {
    [pubsubEmulator, firestoreEmulator, run, compute, gcs] = await Promise.all([
      startEmulator('pubsub'),
      startEmulator('firestore'),
      startFakeRun(),
      startFakeCompute(),
      startFakeGcs(),
    ]);
    // The output bucket, where each success moves its object's _LATEST pointer.
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcs.url);
    routing = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'routing-')), 'pipeline.config.json');
    fs.writeFileSync(
      routing,
      JSON.stringify({
        rules: [
          {
            name: 'csv',
            match: { path: '**' },
            target: 'cloud-run-job',
            job: { task: 'logreg', timeout: '1h' },
            retry: { maxAttempts: 1 },
          },
        ],
      }),
    );
    firestore = emulatorFirestore(firestoreEmulator.host, PROJECT);
    pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: pubsubEmulator.host });
    const [topic] = await pubsub.createTopic(TOPIC);
    [subscription] = await topic.createSubscription('job-events-all', { ackDeadlineSeconds: 60 });
    subscription.on('message', (message: Message) => {
      const parsed = parseJobEvent(JSON.parse(message.data.toString('utf8')));
      if (parsed.kind === 'event') received.push({ event: parsed.event, attributes: message.attributes });
      message.ack();
    });
  }, 120_000);

  afterAll(async () => {
    await subscription?.close();
    for (const dispatcher of dispatchers) await dispatcher.close();
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

  async function until<T>(probe: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** A POST as Pub/Sub's push or a tool sends it: no Origin, which a browser's would carry. */
  const post = (url: string, body: unknown) =>
    new Promise<{ status: number }>((resolve, reject) => {
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
  const envelope = (data: unknown, attributes: Record<string, string> = {}) => ({
    message: { data: Buffer.from(JSON.stringify(data)).toString('base64'), attributes, messageId: '1' },
    subscription: 'projects/test-project/subscriptions/push',
  });
  /** A Cloud Storage notification of a new object version, as the uploads subscription pushes it. */
  const upload = (name: string, generation: string) =>
    envelope(
      { ...FIXTURE, bucket: INPUT, name, generation, size: '2048' },
      {
        bucketId: INPUT,
        objectId: name,
        objectGeneration: generation,
        eventType: 'OBJECT_FINALIZE',
        payloadFormat: 'JSON_API_V1',
      },
    );
  const completion = (job: Job, exitCode: number) =>
    envelope({
      jobId: job.id,
      attempt: job.attempt,
      exitCode,
      startedAt: new Date(Date.now() - 1000).toISOString(),
      finishedAt: new Date().toISOString(),
      preempted: false,
    });
  const eventsOf = (jobId: string) => received.filter((r) => r.event.jobId === jobId);
  /** The states each job's events say, in the order of the job's versions. */
  const statesOf = (jobId: string) =>
    uniqueById(eventsOf(jobId))
      .sort((a, b) => a.event.version - b.event.version)
      .map((r) => r.event.state);

  it('publishes every transition of every job once, with its attributes', async () => {
    const dispatcher = await startDispatcher(TOPIC);
    const names = ['events/ok.csv', 'events/bad.csv', 'events/stopped.csv'];
    const ids = names.map((name) => jobIdFor(INPUT, name, '11'));
    for (const name of names)
      expect((await post(`${dispatcher.url}/pubsub/push`, upload(name, '11'))).status).toBe(201);
    const jobs = await Promise.all(
      ids.map((id) =>
        until(async () => {
          const job = await dispatcher.ledger.get(id);
          return job?.execution === undefined ? undefined : job;
        }),
      ),
    );
    // A redelivered push changes nothing, so publishes nothing new.
    expect((await post(`${dispatcher.url}/pubsub/push`, upload(names[0]!, '11'))).status).toBe(200);
    expect((await post(`${dispatcher.url}/pubsub/completions`, completion(jobs[0]!, 0))).status).toBe(204);
    expect((await post(`${dispatcher.url}/pubsub/completions`, completion(jobs[1]!, 3))).status).toBe(204);
    // The same completion again: a repeated report, no second SUCCEEDED.
    expect((await post(`${dispatcher.url}/pubsub/completions`, completion(jobs[0]!, 0))).status).toBe(204);
    expect((await post(`${dispatcher.url}/jobs/${ids[2]}/cancel`, {})).status).toBe(200);

    const expected = {
      [ids[0]!]: ['QUEUED', 'LAUNCHED', 'SUCCEEDED'],
      [ids[1]!]: ['QUEUED', 'LAUNCHED', 'FAILED'],
      [ids[2]!]: ['QUEUED', 'LAUNCHED', 'CANCELLED'],
    };
    await until(() => (ids.every((id) => statesOf(id).length === 3) ? true : undefined));
    for (const id of ids) {
      expect(statesOf(id), id).toEqual(expected[id]);
      assertOneIdPerTransition(eventsOf(id));
      // Nothing is left in the outbox once its events went out.
    }
    expect(await dispatcher.ledger.pendingEvents(10)).toEqual([]);

    const success = uniqueById(eventsOf(ids[0]!)).find((r) => r.event.state === 'SUCCEEDED')!;
    expect(success.attributes).toEqual({
      eventId: success.event.eventId,
      jobId: ids[0],
      state: 'SUCCEEDED',
      attempt: '1',
      rule: 'csv',
      target: 'cloud-run-job',
      bucket: INPUT,
    });
    expect(success.event).toMatchObject({
      source: { kind: 'object', bucket: INPUT, name: names[0], generation: '11' },
      exitCode: 0,
      outputs: `gs://acme-pipeline-output/${names[0]}/11/`,
    });
    expect(success.event.execution).toBe(jobs[0]!.execution);
    const failure = uniqueById(eventsOf(ids[1]!)).find((r) => r.event.state === 'FAILED')!;
    expect(failure.event.reason).toContain('exit code 3');
    await dispatcher.close();
  }, 120_000);

  it('publishes what a dispatcher stored but could not publish at the next request of a fresh one', async () => {
    // This dispatcher's publishes all fail (its topic does not exist), after its ledger writes: what a
    // dispatcher killed between the ledger's change and the publish leaves behind.
    const broken = await startDispatcher('job-events-missing');
    const name = 'events/orphan.csv';
    const id = jobIdFor(INPUT, name, '12');
    expect((await post(`${broken.url}/pubsub/push`, upload(name, '12'))).status).toBe(201);
    const stored = await until(async () => {
      const pending = (await broken.ledger.pendingEvents(10)).filter((e) => e.jobId === id);
      return pending.length === 2 ? pending : undefined;
    });
    expect(stored.map((e) => e.state)).toEqual(['QUEUED', 'LAUNCHED']);
    expect(
      logs.some((l) => l.message === 'job events not published; the outbox keeps them for the next drain'),
    ).toBe(true);
    await broken.close();

    // A fresh dispatcher, whose first request has nothing to do with that job: it drains the outbox.
    const fresh = await startDispatcher(TOPIC);
    const other = 'events/next.csv';
    expect((await post(`${fresh.url}/pubsub/push`, upload(other, '13'))).status).toBe(201);
    await until(() => (statesOf(id).length === 2 ? true : undefined));
    expect(
      uniqueById(eventsOf(id))
        .map((r) => r.event.eventId)
        .sort(),
    ).toEqual(stored.map((e) => e.eventId).sort());
    assertOneIdPerTransition(eventsOf(id));
    expect(await fresh.ledger.pendingEvents(10)).toEqual([]);
    await until(() => (statesOf(jobIdFor(INPUT, other, '13')).length === 2 ? true : undefined));
    await fresh.close();
  }, 120_000);
});

/** One message per event id (Pub/Sub delivers at least once: a repeat is the same event). */
function uniqueById(events: Received[]): Received[] {
  return [...new Map(events.map((r) => [r.event.eventId, r])).values()];
}

/** Each transition (a version of the job entering a state) has exactly one event id, and the reverse. */
function assertOneIdPerTransition(events: Received[]): void {
  const idsByTransition = new Map<string, Set<string>>();
  for (const { event } of events) {
    const key = `${event.version}/${event.state}`;
    idsByTransition.set(key, (idsByTransition.get(key) ?? new Set()).add(event.eventId));
  }
  for (const [transition, ids] of idsByTransition) expect(ids.size, transition).toBe(1);
  expect(new Set(events.map((r) => r.event.eventId)).size).toBe(idsByTransition.size);
}
