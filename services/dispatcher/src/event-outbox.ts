// Publishing job events from the ledger's outbox. The events of a job change are stored with it, in
// one atomic write (job-writes.ts, the ledgers); the drain here reads the oldest, publishes each to
// the sink (Pub/Sub's job-events topic, or local mode's events.ndjson and GET /events) and removes
// from the outbox only what the sink acknowledged. A dispatcher killed between the ledger's write and
// the publish leaves the events in the outbox, and the next drain, by whichever instance, publishes
// them: nothing is lost.
//
// At least once, not exactly once: an acknowledgement lost on the way back, or a dispatcher killed
// between the publish and the removal, publishes the event again with the same eventId; two
// instances draining at once may both publish an entry. Subscribers deduplicate on eventId.
//
// Drains run inside the work that changed jobs: a write that stored events starts one (drainSoon),
// and a request waits for it before it answers (drain), since on Cloud Run without always-on CPU
// work after a response is not reliable. A refused or timed-out publish is logged as a warning and
// stays in the outbox for a later drain; a drain never throws.
import type { ClaimResult, Job, JobEvent, Ledger } from '@pipeline/core';
import type { Logger } from 'pino';

/** Where drained events go: resolves once the destination has the event, rejects if it refused. */
export interface JobEventSink {
  publish(event: JobEvent): Promise<void>;
  close?(): Promise<void>;
}

/** How many events one round reads and publishes at once. */
const DRAIN_BATCH = 100;
/** Rounds per drain, at most: a backlog larger than this is left to the next drain. */
const MAX_ROUNDS = 20;

export class EventOutbox {
  private readonly ledger: Ledger;
  private readonly sink: JobEventSink;
  private readonly logger: Logger;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(options: { ledger: Ledger; sink: JobEventSink; logger: Logger }) {
    this.ledger = options.ledger;
    this.sink = options.sink;
    this.logger = options.logger;
  }

  /**
   * Publishes what the outbox holds now, and what is stored while it runs. Within one process one
   * drain runs at a time; a call during one makes it go round again and waits for it. Never rejects.
   */
  drain(): Promise<void> {
    this.again = true;
    this.running ??= this.rounds();
    return this.running;
  }

  /** drain, without waiting for it (after a write that stored events). */
  drainSoon(): void {
    void this.drain();
  }

  /** A last drain (what the stop itself recorded), then the sink's client is let go. */
  async close(): Promise<void> {
    await this.drain();
    await this.sink.close?.();
  }

  private async rounds(): Promise<void> {
    try {
      for (let round = 0; this.again && round < MAX_ROUNDS; round++) {
        this.again = false;
        if (!(await this.round())) return;
      }
    } catch (err) {
      this.logger.warn({ err }, 'job events not published; the outbox keeps them for the next drain');
    } finally {
      // In the same synchronous step as the loop's last check: a drain() after it starts a new one.
      this.running = undefined;
    }
  }

  /** One batch; false when something was refused (the next drain tries again, not this one). */
  private async round(): Promise<boolean> {
    const pending = await this.ledger.pendingEvents(DRAIN_BATCH);
    if (pending.length === 0) return true;
    const results = await Promise.allSettled(pending.map((event) => this.sink.publish(event)));
    const published = pending.filter((_, i) => results[i].status === 'fulfilled').map((e) => e.eventId);
    if (published.length > 0) await this.ledger.markPublished(published);
    const refused = results.flatMap((result, i) =>
      result.status === 'rejected' ? [{ event: pending[i], reason: result.reason as unknown }] : [],
    );
    if (refused.length > 0) {
      const [first] = refused;
      this.logger.warn(
        {
          refused: refused.length,
          published: published.length,
          jobId: first.event.jobId,
          eventId: first.event.eventId,
          reason: first.reason instanceof Error ? first.reason.message : String(first.reason),
        },
        'job events not published; the outbox keeps them for the next drain',
      );
      return false;
    }
    if (pending.length === DRAIN_BATCH) this.again = true;
    return true;
  }
}

/**
 * The dispatcher's view of the ledger as far as events go. With an outbox, writes pass their events
 * on and each one that stored some starts a drain; without one (no sink configured: no topic),
 * events are dropped before they reach the ledger, so that nothing piles up unread.
 */
export class OutboxLedger implements Ledger {
  private readonly ledger: Ledger;
  private readonly stored: (() => void) | undefined;

  constructor(ledger: Ledger, stored: (() => void) | undefined) {
    this.ledger = ledger;
    this.stored = stored;
  }

  async claim(job: Job, leaseMs: number, events?: readonly JobEvent[]): Promise<ClaimResult> {
    if (this.stored === undefined || events === undefined || events.length === 0)
      return this.ledger.claim(job, leaseMs);
    const result = await this.ledger.claim(job, leaseMs, events);
    // Stored only when the claim made the job (a takeover is RECEIVED, which makes no event).
    if (result.claimed && result.job === job) this.stored();
    return result;
  }

  async update(next: Job, events?: readonly JobEvent[]): Promise<boolean> {
    if (this.stored === undefined || events === undefined || events.length === 0)
      return this.ledger.update(next);
    const written = await this.ledger.update(next, events);
    if (written) this.stored();
    return written;
  }

  pendingEvents(limit: number) {
    return this.ledger.pendingEvents(limit);
  }
  markPublished(eventIds: readonly string[]) {
    return this.ledger.markPublished(eventIds);
  }
  get(id: string) {
    return this.ledger.get(id);
  }
  withIdPrefix(prefix: string, limit: number) {
    return this.ledger.withIdPrefix(prefix, limit);
  }
  list(query: Parameters<Ledger['list']>[0]) {
    return this.ledger.list(query);
  }
  succeeded(rule: string, limit: number) {
    return this.ledger.succeeded(rule, limit);
  }
  queued(limit: number) {
    return this.ledger.queued(limit);
  }
  readCapacity() {
    return this.ledger.readCapacity();
  }
  writeCapacity(next: Parameters<Ledger['writeCapacity']>[0]) {
    return this.ledger.writeCapacity(next);
  }
}
