// Dead letters on the Pub/Sub emulator, made the real way: push subscriptions with a dead-letter policy
// (5 attempts, the least allowed) deliver to a loopback server that refuses everything, so Pub/Sub moves
// the messages to the dead-letter topic with its CloudPubSubDeadLetter* attributes. A second pull
// subscription on that topic ("watch") lets the test see them arrive without touching the one under test.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PubSub, v1, type Topic } from '@google-cloud/pubsub';
import { parsePush, type DeadLetter } from '@pipeline/core';
import { buildApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import { PubSubDeadLetterQueue } from '../../src/gcp/dead-letters.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
import { createLogger } from '../../src/logger.ts';
import { testApp } from '../support.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { testCloudEnv } from './test-launchers.ts';
import { until } from '../../../../test/support/until.ts';

const PROJECT = 'test-project';
const FIXTURE = JSON.parse(
  fs.readFileSync(
    path.resolve(
      import.meta.dirname,
      '../../../../packages/core/test/fixtures/gcs-object-finalize.push.json',
    ),
    'utf8',
  ),
) as { message: { data: string; attributes: Record<string, string> } };
const NOTIFICATION = Buffer.from(FIXTURE.message.data, 'base64');
const OBJECT = `acme-pipeline-input/statements/2026/q3/financial_statements.csv#1763771234567890`;
// Multi-byte text longer than 2 KiB whose cut falls inside a character (byte 2047 starts an "é").
const LONG_TEXT = `a${'é'.repeat(1500)}`;
const COMPLETION = {
  jobId: '0123456789abcdef0123456789abcdef',
  attempt: 2,
  exitCode: 3,
  finishedAt: '2026-11-22T04:01:00.000Z',
};

interface Delivery {
  path: string;
  body: { message: { messageId: string; data?: string; attributes?: Record<string, string> } };
}

/** A push endpoint on loopback: refuses (503) until told to accept (204); records every delivery. */
async function startPushServer() {
  const deliveries: Delivery[] = [];
  let accept = false;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      deliveries.push({ path: req.url ?? '', body: JSON.parse(body) });
      res.statusCode = accept ? 204 : 503;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    deliveries,
    accept() {
      accept = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const ids = (letters: DeadLetter[]) => letters.map((letter) => letter.id).sort();

describeWithEmulators(['pubsub'], 'dead letters on the Pub/Sub emulator', () => {
  let emulator: Emulator;
  let push: Awaited<ReturnType<typeof startPushServer>>;
  let pubsub: PubSub;
  let watcher: v1.SubscriberClient;
  let queue: PubSubDeadLetterQueue;
  /** The dead letters' ids (in the dead-letter topic), by what they were. */
  const dead = {
    valid: '',
    malformed: '',
    notStorage: '',
    badCompletion: '',
    goodCompletion: '',
    foreign: '',
    bare: '',
  };
  /** The ids of all dead letters but these. */
  const allBut = (...kinds: (keyof typeof dead)[]) =>
    Object.entries(dead)
      .filter(([kind]) => !kinds.includes(kind as keyof typeof dead))
      .map(([, id]) => id)
      .sort();
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger(
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line !== '') logs.push(JSON.parse(line));
        done();
      },
    }),
  );

  beforeAll(async () => {
    [emulator, push] = await Promise.all([startEmulator('pubsub'), startPushServer()]);
    pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: emulator.host });
    const [deadLetter] = await pubsub.createTopic('dead-letter');
    await deadLetter.createSubscription('dead-letter', { ackDeadlineSeconds: 60 });
    await deadLetter.createSubscription('dead-letter-watch', { ackDeadlineSeconds: 60 });
    const refused = async (topic: Topic, subscription: string, route: string) =>
      topic.createSubscription(subscription, {
        pushConfig: { pushEndpoint: `${push.url}${route}` },
        ackDeadlineSeconds: 10,
        deadLetterPolicy: { deadLetterTopic: deadLetter.name, maxDeliveryAttempts: 5 },
      });
    const [uploads] = await pubsub.createTopic('uploads');
    const [completions] = await pubsub.createTopic('completions');
    await refused(uploads, 'uploads-push', '/pubsub/push');
    await refused(completions, 'completions-push', '/pubsub/completions');

    await uploads.publishMessage({ data: NOTIFICATION, attributes: FIXTURE.message.attributes });
    await uploads.publishMessage({
      data: Buffer.from('not json'),
      attributes: { ...FIXTURE.message.attributes, objectId: 'statements/broken.csv' },
    });
    await uploads.publishMessage({ data: Buffer.from('hello'), attributes: { source: 'a test' } });
    await completions.publishMessage({ json: { jobId: 'not-a-job', attempt: 1, exitCode: 0 } });
    await completions.publishMessage({ json: COMPLETION });
    // Dead-lettered by hand from a subscription the dispatcher does not read.
    await deadLetter.publishMessage({
      data: Buffer.from(LONG_TEXT),
      attributes: {
        CloudPubSubDeadLetterSourceSubscription: 'someone-elses-push',
        CloudPubSubDeadLetterSourceSubscriptionProject: PROJECT,
        CloudPubSubDeadLetterSourceDeliveryCount: '7',
      },
    });
    await deadLetter.publishMessage({ data: Buffer.from('bare') });

    // The emulator retries after about 1 s and then every 3 s: all are there in about 13 s.
    watcher = new v1.SubscriberClient(
      (await pubsub.getClientConfig()) as ConstructorParameters<typeof v1.SubscriberClient>[0],
    );
    const watch = `projects/${PROJECT}/subscriptions/dead-letter-watch`;
    await until(async () => {
      const [{ receivedMessages = [] }] = await watcher.pull({ subscription: watch, maxMessages: 10 });
      for (const { ackId, message } of receivedMessages ?? []) {
        dead[kindOf(message!)] = message!.messageId!;
        await watcher.acknowledge({ subscription: watch, ackIds: [ackId!] });
      }
      return Object.values(dead).every((id) => id !== '') ? true : undefined;
    }, 45_000);

    queue = new PubSubDeadLetterQueue({
      project: PROJECT,
      subscription: 'dead-letter',
      sources: [
        { subscription: 'uploads-push', topic: 'uploads', kind: 'storage-notification' },
        { subscription: 'completions-push', topic: 'completions', kind: 'completion' },
      ],
      logger,
      clientConfig: { apiEndpoint: emulator.host },
      // The emulator answers a pull at once when it holds messages; an empty one is held open until
      // this deadline, which every listing waits out once at its end (3 s as shipped).
      pullWaitMs: 1000,
    });
  }, 90_000);

  afterAll(async () => {
    await queue?.close();
    await watcher?.close();
    await pubsub?.close();
    await push?.close();
    await emulator?.stop();
  }, 30_000);

  /** Which of the test's messages a dead letter is. */
  function kindOf(message: { attributes?: Record<string, string> | null; data?: unknown }) {
    const attributes = message.attributes ?? {};
    switch (attributes.CloudPubSubDeadLetterSourceSubscription) {
      case undefined:
        return 'bare';
      case 'someone-elses-push':
        return 'foreign';
      case 'completions-push':
        return String(message.data).includes('not-a-job') ? 'badCompletion' : 'goodCompletion';
      default:
        if (attributes.eventType === undefined) return 'notStorage';
        return attributes.objectId === 'statements/broken.csv' ? 'malformed' : 'valid';
    }
  }

  it('lists every dead letter with where it came from and why, and listing consumes none', async () => {
    const first = await queue.list(100);
    const second = await queue.list(100);
    expect(ids(first)).toEqual(allBut());
    expect(ids(second)).toEqual(ids(first));

    const byId = new Map(first.map((letter) => [letter.id, letter]));
    const valid = byId.get(dead.valid)!;
    expect(valid).toMatchObject({
      sourceSubscription: 'uploads-push',
      deliveryAttempts: 5,
      data: NOTIFICATION.toString('utf8'),
      reason: `a valid OBJECT_FINALIZE notification for ${OBJECT} that was refused 5 times; see the dispatcher's logs`,
    });
    expect(valid.attributes).toMatchObject(FIXTURE.message.attributes);
    expect(Date.parse(valid.publishTime)).not.toBeNaN();
    expect(byId.get(dead.malformed)!.reason).toBe(
      'malformed: message.data is not base64 of a JSON object resource',
    );
    expect(byId.get(dead.notStorage)!.reason).toBe(
      'not a storage notification (no eventType, bucketId and objectId attributes), which the intake ' +
        "acknowledges now; it was refused 5 times; see the dispatcher's logs",
    );
    expect(byId.get(dead.badCompletion)).toMatchObject({
      sourceSubscription: 'completions-push',
      deliveryAttempts: 5,
      reason: 'malformed: the completion has no valid jobId',
    });
    expect(byId.get(dead.goodCompletion)!.reason).toBe(
      `a valid completion of job ${COMPLETION.jobId} attempt 2 (exit code 3) that was refused 5 times; ` +
        "see the dispatcher's logs",
    );
    expect(byId.get(dead.bare)).toMatchObject({
      reason:
        'no CloudPubSubDeadLetterSourceSubscription attribute: published to the dead-letter topic directly',
      data: 'bare',
      attributes: {},
    });
    expect(byId.get(dead.bare)!.sourceSubscription).toBeUndefined();
    expect(byId.get(dead.bare)!.deliveryAttempts).toBeUndefined();
    expect(byId.get(dead.foreign)).toMatchObject({
      deliveryAttempts: 7,
      reason:
        'from subscription someone-elses-push, which the dispatcher does not read (it reads uploads-push, completions-push)',
      // Cut to 2 KiB, and not inside a character.
      data: `a${'é'.repeat(1023)}`,
    });
  });

  it('lists no more than asked, and the rest stays', async () => {
    const two = await queue.list(2);
    expect(two).toHaveLength(2);
    expect(Object.values(dead)).toEqual(expect.arrayContaining(ids(two)));
    expect(await queue.list(100)).toHaveLength(7);
  });

  it('replays a valid notification to the uploads topic as it was first published, and removes it', async () => {
    push.accept();
    const replayed = await queue.replay(dead.valid);
    expect(replayed).toEqual({ topic: `projects/${PROJECT}/topics/uploads`, messageId: expect.any(String) });

    const delivery = await until(() =>
      push.deliveries.find((d) => d.body.message.messageId === replayed!.messageId),
    );
    expect(delivery.path).toBe('/pubsub/push');
    // The dead-lettering attributes stay behind: the intake sees what Cloud Storage sent.
    expect(delivery.body.message.attributes).toEqual(FIXTURE.message.attributes);
    expect(Buffer.from(delivery.body.message.data!, 'base64').equals(NOTIFICATION)).toBe(true);
    const parsed = parsePush(delivery.body);
    expect(parsed.kind).toBe('event');

    expect(ids(await queue.list(100))).toEqual(allBut('valid'));
  });

  it('replays nothing for an id it does not hold, and leaves the rest', async () => {
    expect(await queue.replay('999999999')).toBeUndefined();
    expect(await queue.replay(dead.valid)).toBeUndefined(); // replayed already
    expect(ids(await queue.list(100))).toEqual(allBut('valid'));
  });

  it('serves GET /deadletters and POST /deadletters/:id/replay from the queue', async () => {
    const t = testApp();
    try {
      const app = buildApp({
        dispatcher: t.dispatcher,
        reconciler: t.reconciler,
        ledger: t.ledger,
        logger,
        deadLetters: queue,
      });
      const listed = await request(app).get('/deadletters?limit=10').expect(200);
      expect(ids(listed.body.messages)).toEqual(allBut('valid'));

      const replayed = await request(app).post(`/deadletters/${dead.badCompletion}/replay`).expect(200);
      expect(replayed.body).toEqual({
        id: dead.badCompletion,
        topic: `projects/${PROJECT}/topics/completions`,
        messageId: expect.any(String),
      });
      const delivery = await until(() =>
        push.deliveries.find((d) => d.body.message.messageId === replayed.body.messageId),
      );
      expect(delivery.path).toBe('/pubsub/completions');
      expect(JSON.parse(Buffer.from(delivery.body.message.data!, 'base64').toString('utf8'))).toEqual({
        jobId: 'not-a-job',
        attempt: 1,
        exitCode: 0,
      });

      const foreign = await request(app).post(`/deadletters/${dead.foreign}/replay`).expect(409);
      expect(foreign.body.error).toContain('someone-elses-push');
      await request(app).post('/deadletters/999999999/replay').expect(404);
      const after = await request(app).get('/deadletters').expect(200);
      expect(ids(after.body.messages)).toEqual(allBut('valid', 'badCompletion'));
    } finally {
      t.cleanup();
    }
  });

  it('is wired from DEAD_LETTER_SUBSCRIPTION in cloud mode, through PUBSUB_EMULATOR_HOST', async () => {
    process.env.PUBSUB_EMULATOR_HOST = emulator.host; // this file's own process (vitest forks)
    const cloud = buildCloudDispatcher(
      parseConfig({
        ...testCloudEnv(),
        DEAD_LETTER_SUBSCRIPTION: 'dead-letter',
        UPLOADS_SUBSCRIPTION: 'uploads-push',
        UPLOADS_TOPIC: 'uploads',
        COMPLETIONS_SUBSCRIPTION: 'completions-push',
      }),
      logger,
    );
    try {
      const listed = await request(cloud.app).get('/deadletters').expect(200);
      expect(ids(listed.body.messages)).toEqual(allBut('valid', 'badCompletion'));
      expect(listed.body.messages.find((m: DeadLetter) => m.id === dead.malformed).reason).toMatch(
        /^malformed: /,
      );
    } finally {
      await cloud.close();
      delete process.env.PUBSUB_EMULATOR_HOST;
    }
  });
});
