// The job-events topic as the outbox's sink (event-outbox.ts): each event is published as its JSON
// with jobEventAttributes (state, rule, target, ...) for subscription filters. The client is made on
// the first publish, so the dispatcher starts without loading @google-cloud/pubsub; it follows
// PUBSUB_EMULATOR_HOST as the library does.
//
// A publish that Pub/Sub refuses, or that has no answer within `timeoutMs`, rejects: the event stays
// in the outbox and a later drain publishes it again. If the first publish went through after all,
// that is a duplicate with the same eventId, which at-least-once delivery allows.
import type { ClientConfig, PubSub, Topic } from '@google-cloud/pubsub';
import { jobEventAttributes, type JobEvent } from '@pipeline/core';
import type { JobEventSink } from '../event-outbox.ts';

/** Well inside a push's ack deadline: a drain waits for its publishes before the request answers. */
const PUBLISH_TIMEOUT_MS = 10_000;

export interface PubSubJobEventsOptions {
  project: string;
  /** The job-events topic's id in `project`. */
  topic: string;
  /** Settings for the client (tests: the emulator's apiEndpoint). */
  clientConfig?: ClientConfig;
  timeoutMs?: number;
}

export class PubSubJobEvents implements JobEventSink {
  private readonly options: PubSubJobEventsOptions;
  private client: Promise<{ pubsub: PubSub; topic: Topic }> | undefined;

  constructor(options: PubSubJobEventsOptions) {
    this.options = options;
  }

  async publish(event: JobEvent): Promise<void> {
    const { topic } = await this.connect();
    const published = topic.publishMessage({
      data: Buffer.from(JSON.stringify(event), 'utf8'),
      attributes: jobEventAttributes(event),
    });
    published.catch(() => {}); // a publish that loses the race below is not an unhandled rejection
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.options.timeoutMs ?? PUBLISH_TIMEOUT_MS;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`publishing to ${this.options.topic} had no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([published, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    // No flush: every publish was awaited (or timed out) by its drain, and a flush would wait on one
    // that Pub/Sub never answers.
    const { pubsub } = await client.catch(() => ({ pubsub: undefined }));
    await pubsub?.close().catch(() => {});
  }

  private connect(): Promise<{ pubsub: PubSub; topic: Topic }> {
    this.client ??= import('@google-cloud/pubsub')
      .then(({ PubSub }) => {
        const pubsub = new PubSub({ ...this.options.clientConfig, projectId: this.options.project });
        // Sent at once: a drain publishes a batch of its own and waits for it.
        const topic = pubsub.topic(this.options.topic, { batching: { maxMilliseconds: 5 } });
        return { pubsub, topic };
      })
      .catch((err: unknown) => {
        this.client = undefined; // try again next time
        throw err;
      });
    return this.client;
  }
}
