// The job-events publisher against a Pub/Sub that takes the connection and never answers: the
// publish rejects after its timeout, saying so (the outbox keeps the event), and nothing is left
// rejecting unhandled, nor waiting, when the publisher closes.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventsFor, newJob, transition } from '@pipeline/core';
import { PubSubJobEvents } from '../../src/gcp/job-events-publisher.ts';

let silent: net.Server;
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  silent = net.createServer((socket) => {
    sockets.add(socket); // read nothing, answer nothing
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
});

it('rejects a publish that has no answer within its timeout, and closes without waiting for it', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const job = transition(
    newJob('ab'.repeat(16), { kind: 'request', task: 'logreg', args: [], env: {} }, new Date().toISOString()),
    'QUEUED',
    new Date().toISOString(),
  );
  const [event] = eventsFor(undefined, job);
  const port = (silent.address() as AddressInfo).port;
  const publisher = new PubSubJobEvents({
    project: 'test-project',
    topic: 'job-events',
    clientConfig: { apiEndpoint: `127.0.0.1:${port}` },
    timeoutMs: 300,
  });
  try {
    await expect(publisher.publish(event!)).rejects.toThrow(
      'publishing to job-events had no answer within 300 ms',
    );
    await publisher.close();
    // What the library does with the abandoned publish happens on its own turns: wait for them.
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
