// The dead-letter pull subscription as the dispatcher's DeadLetterQueue (GET /deadletters and replay).
// Pub/Sub moves a message there after a push subscription's last refused delivery, and adds the
// CloudPubSubDeadLetter* attributes that say from where. Nothing here consumes a message except a
// replay: listing pulls and gives everything back at once (modifyAckDeadline 0).
//
// The low-level v1 clients, because a listing needs pull without a streaming subscriber, and a replay
// needs the id of what it published. They are made on first use, from PubSub's own client settings
// (apiEndpoint, or PUBSUB_EMULATOR_HOST, with the emulator's plain-text channel), so the dispatcher
// starts without loading @google-cloud/pubsub.
import type { ClientConfig, protos, v1 } from '@google-cloud/pubsub';
import type { Logger } from 'pino';
import { parseCompletionPush, parsePush, type DeadLetter, type DeadLetterQueue } from '@pipeline/core';
import { RequestError } from '../dispatcher.ts';

type PulledMessage = protos.google.pubsub.v1.IPubsubMessage;

/** A push subscription that dead-letters, the topic it reads, and what the dispatcher makes of its messages. */
export interface DeadLetterSource {
  subscription: string;
  topic: string;
  kind: 'storage-notification' | 'completion';
}

export interface PubSubDeadLetterQueueOptions {
  project: string;
  /** The dead-letter pull subscription's id. */
  subscription: string;
  sources: DeadLetterSource[];
  logger: Logger;
  /** Settings for the clients (tests: the emulator's apiEndpoint); absent: Google, or PUBSUB_EMULATOR_HOST. */
  clientConfig?: ClientConfig;
  /** How long a pull may wait: Pub/Sub holds a pull on an empty subscription open until its deadline. */
  pullWaitMs?: number;
}

// Added by Pub/Sub when it dead-letters (the emulator adds the same four).
const SOURCE_SUBSCRIPTION = 'CloudPubSubDeadLetterSourceSubscription';
const SOURCE_PROJECT = 'CloudPubSubDeadLetterSourceSubscriptionProject';
const DELIVERY_COUNT = 'CloudPubSubDeadLetterSourceDeliveryCount';
const ADDED_BY_DEAD_LETTERING = 'CloudPubSubDeadLetter';

const MAX_DATA_BYTES = 2048;
const MAX_PER_PULL = 1000; // Pub/Sub's most per pull
const MAX_PULLS = 10; // the bound on one listing or one search for a replay
const ACK_IDS_PER_CALL = 1000; // well inside the request size limit
const DEADLINE_EXCEEDED = 4;

interface Clients {
  subscriber: v1.SubscriberClient;
  publisher: v1.PublisherClient;
}

/** What one listing or search has pulled: the latest lease of each message, and every ack id to give back. */
interface Pulled {
  messages: Map<string, { ackId: string; message: PulledMessage }>;
  ackIds: Set<string>;
}

export class PubSubDeadLetterQueue implements DeadLetterQueue {
  private readonly options: PubSubDeadLetterQueueOptions;
  private readonly subscriptionPath: string;
  private clients: Promise<Clients> | undefined;

  constructor(options: PubSubDeadLetterQueueOptions) {
    this.options = options;
    this.subscriptionPath = `projects/${options.project}/subscriptions/${options.subscription}`;
  }

  async list(limit: number): Promise<DeadLetter[]> {
    const { subscriber } = await this.connect();
    const pulled: Pulled = { messages: new Map(), ackIds: new Set() };
    try {
      await this.pull(subscriber, pulled, limit, () => false);
      return [...pulled.messages.entries()]
        .slice(0, limit)
        .map(([id, { message }]) => this.describe(id, message))
        .sort((a, b) => a.publishTime.localeCompare(b.publishTime) || a.id.localeCompare(b.id));
    } finally {
      await this.giveBack(subscriber, pulled.ackIds);
    }
  }

  async replay(id: string): Promise<{ topic: string; messageId: string } | undefined> {
    const { subscriber, publisher } = await this.connect();
    const pulled: Pulled = { messages: new Map(), ackIds: new Set() };
    try {
      await this.pull(subscriber, pulled, Infinity, () => pulled.messages.has(id));
      const found = pulled.messages.get(id);
      if (found === undefined) return undefined;
      const attributes = found.message.attributes ?? {};
      const source = this.sourceOf(attributes);
      if (source === undefined) {
        throw new RequestError(
          'CONFLICT',
          `dead letter ${id} came from ${attributes[SOURCE_SUBSCRIPTION] ?? 'no subscription'}, ` +
            'which the dispatcher does not read: there is no topic to replay it to',
        );
      }
      const topic = `projects/${this.options.project}/topics/${source.topic}`;
      const [response] = await publisher.publish({
        topic,
        messages: [
          {
            data: found.message.data,
            attributes: Object.fromEntries(
              Object.entries(attributes).filter(([name]) => !name.startsWith(ADDED_BY_DEAD_LETTERING)),
            ),
            ...(found.message.orderingKey ? { orderingKey: found.message.orderingKey } : {}),
          },
        ],
      });
      const messageId = response.messageIds?.[0];
      if (messageId === undefined) throw new Error(`publishing dead letter ${id} to ${topic} returned no id`);
      // Only once it is published again: a failed publish leaves the dead letter where it was.
      await subscriber.acknowledge({ subscription: this.subscriptionPath, ackIds: [found.ackId] });
      pulled.ackIds.delete(found.ackId);
      return { topic, messageId };
    } finally {
      await this.giveBack(subscriber, pulled.ackIds);
    }
  }

  async close(): Promise<void> {
    const clients = this.clients;
    this.clients = undefined;
    if (clients === undefined) return;
    const { subscriber, publisher } = await clients;
    await Promise.all([subscriber.close(), publisher.close()]);
  }

  private connect(): Promise<Clients> {
    this.clients ??= (async () => {
      const { PubSub, v1 } = await import('@google-cloud/pubsub');
      const pubsub = new PubSub({ ...this.options.clientConfig, projectId: this.options.project });
      // The endpoint, port and (for the emulator) plain-text credentials that PubSub worked out.
      const config = (await pubsub.getClientConfig()) as ConstructorParameters<typeof v1.SubscriberClient>[0];
      return { subscriber: new v1.SubscriberClient(config), publisher: new v1.PublisherClient(config) };
    })().catch((err: unknown) => {
      this.clients = undefined; // try again on the next call
      throw err;
    });
    return this.clients;
  }

  /**
   * Pulls until `enough`, `limit` messages, or a pull that brings nothing new. Pub/Sub may deliver a
   * message again while it is leased (the emulator does when a lease runs out): such repeats are
   * kept once, under their latest ack id, and a pull of only repeats ends the search.
   */
  private async pull(
    subscriber: v1.SubscriberClient,
    pulled: Pulled,
    limit: number,
    enough: () => boolean,
  ): Promise<void> {
    for (let i = 0; i < MAX_PULLS && pulled.messages.size < limit && !enough(); i++) {
      const received = await this.pullOnce(subscriber, Math.min(limit - pulled.messages.size, MAX_PER_PULL));
      let fresh = 0;
      for (const { ackId, message } of received) {
        if (!ackId) continue;
        pulled.ackIds.add(ackId);
        if (!message?.messageId) continue;
        if (!pulled.messages.has(message.messageId)) fresh++;
        pulled.messages.set(message.messageId, { ackId, message });
      }
      if (fresh === 0) return;
    }
  }

  private async pullOnce(subscriber: v1.SubscriberClient, maxMessages: number) {
    try {
      const [response] = await subscriber.pull(
        { subscription: this.subscriptionPath, maxMessages },
        { timeout: this.options.pullWaitMs ?? 3000 },
      );
      return response.receivedMessages ?? [];
    } catch (err) {
      // An empty subscription keeps the pull open until its deadline: that means no more messages.
      if ((err as { code?: unknown }).code === DEADLINE_EXCEEDED) return [];
      throw err;
    }
  }

  /** Ends the leases at once, so that the messages can be listed or replayed again right away. */
  private async giveBack(subscriber: v1.SubscriberClient, ackIds: Set<string>): Promise<void> {
    const all = [...ackIds];
    for (let i = 0; i < all.length; i += ACK_IDS_PER_CALL) {
      try {
        await subscriber.modifyAckDeadline({
          subscription: this.subscriptionPath,
          ackIds: all.slice(i, i + ACK_IDS_PER_CALL),
          ackDeadlineSeconds: 0,
        });
      } catch (err) {
        // Not lost: they come back when the subscription's ack deadline passes.
        this.options.logger.warn(
          { err, subscription: this.subscriptionPath },
          'could not give dead letters back; they reappear after the ack deadline',
        );
      }
    }
  }

  /** The push subscription a dead letter came from, if it is one the dispatcher reads. */
  private sourceOf(attributes: Record<string, string>): DeadLetterSource | undefined {
    const project = attributes[SOURCE_PROJECT];
    if (project !== undefined && project !== this.options.project) return undefined;
    // The id (what Pub/Sub and the emulator send), or a full path.
    const id = attributes[SOURCE_SUBSCRIPTION]?.split('/').at(-1);
    return this.options.sources.find((source) => source.subscription === id);
  }

  private describe(id: string, message: PulledMessage): DeadLetter {
    const attributes = message.attributes ?? {};
    const count = Number(attributes[DELIVERY_COUNT]);
    const deliveryAttempts = Number.isInteger(count) && count > 0 ? count : undefined;
    return {
      id,
      publishTime: isoTime(message.publishTime),
      sourceSubscription: attributes[SOURCE_SUBSCRIPTION],
      deliveryAttempts,
      reason: this.reason(id, message, deliveryAttempts),
      attributes,
      data: cutUtf8(Buffer.from(message.data ?? ''), MAX_DATA_BYTES),
    };
  }

  /** What the dispatcher makes of the message now: the intake's own parse of what it was pushed. */
  private reason(id: string, message: PulledMessage, attempts: number | undefined): string {
    const attributes = message.attributes ?? {};
    const from = attributes[SOURCE_SUBSCRIPTION];
    if (from === undefined)
      return `no ${SOURCE_SUBSCRIPTION} attribute: published to the dead-letter topic directly`;
    const source = this.sourceOf(attributes);
    if (source === undefined) {
      const known = this.options.sources.map((s) => s.subscription).join(', ');
      return `from subscription ${from}, which the dispatcher does not read (it reads ${known})`;
    }
    // The body Pub/Sub pushed: the same envelope the intake parsed before refusing it.
    const envelope = {
      message: {
        data: Buffer.from(message.data ?? '').toString('base64'),
        attributes,
        messageId: id,
        publishTime: attributes.CloudPubSubDeadLetterSourceTopicPublishTime,
      },
      subscription: `projects/${this.options.project}/subscriptions/${source.subscription}`,
    };
    const refused = `refused ${attempts === undefined ? 'repeatedly' : `${attempts} times`}; see the dispatcher's logs`;
    if (source.kind === 'completion') {
      const parsed = parseCompletionPush(envelope);
      if (parsed.kind === 'malformed') return `malformed: ${parsed.reason}`;
      const { jobId, attempt, exitCode } = parsed.completion;
      return `a valid completion of job ${jobId} attempt ${attempt} (exit code ${exitCode}) that was ${refused}`;
    }
    const parsed = parsePush(envelope);
    if (parsed.kind === 'malformed') return `malformed: ${parsed.reason}`;
    if (parsed.kind === 'not-storage')
      return `not a storage notification (${parsed.reason}), which the intake acknowledges now; it was ${refused}`;
    const { eventType, object } = parsed.event;
    return `a valid ${eventType} notification for ${object.bucket}/${object.name}#${object.generation} that was ${refused}`;
  }
}

/** A protobuf Timestamp as an ISO time ('' if it has none). */
function isoTime(time: PulledMessage['publishTime']): string {
  if (time?.seconds === undefined || time.seconds === null) return '';
  const ms = Number(time.seconds) * 1000 + Math.floor((time.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString();
}

/** The text of the first `max` bytes, without a character cut in half at the end. */
function cutUtf8(bytes: Buffer, max: number): string {
  if (bytes.length <= max) return bytes.toString('utf8');
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back to the first byte of that character
  return bytes.subarray(0, end).toString('utf8');
}
