// The outbox's drain on its own, over a real sqlite ledger: a refused publish stays for the next
// drain (a warning, no rejection), events stored during a drain are published by the drain a caller
// waits for, and two drains of one outbox at once (two dispatchers) lose nothing.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { eventsFor, newJob, transition, type Job, type JobEvent } from '@pipeline/core';
import { EventOutbox, type JobEventSink } from '../src/event-outbox.ts';
import { SqliteLedger } from '../src/local/sqlite-ledger.ts';
import { createLogger } from '../src/logger.ts';

const at = (s: number) => new Date(Date.UTC(2026, 11, 1, 9, 0, s)).toISOString();
const idOf = (n: number) => n.toString(16).padStart(32, '0');
const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };

/** Stores a QUEUED job `n` with its event, as a push's claim does. */
async function queue(ledger: SqliteLedger, n: number): Promise<Job> {
  const job = transition(newJob(idOf(n), source, at(0)), 'QUEUED', at(n));
  await ledger.claim(job, 60_000, eventsFor(undefined, job));
  return job;
}

function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
        done();
      },
    }),
  );
  return { logger, lines };
}

describe('EventOutbox', () => {
  it('keeps a refused event for the next drain, says why, and never rejects', async () => {
    const ledger = new SqliteLedger(':memory:');
    await queue(ledger, 1);
    const published: JobEvent[] = [];
    let refuse = true;
    const sink: JobEventSink = {
      async publish(event) {
        if (refuse) throw new Error('PERMISSION_DENIED: not a publisher');
        published.push(event);
      },
    };
    const { logger, lines } = recordingLogger();
    const outbox = new EventOutbox({ ledger, sink, logger });
    await expect(outbox.drain()).resolves.toBeUndefined();
    expect(published).toEqual([]);
    expect(await ledger.pendingEvents(10)).toHaveLength(1);
    expect(lines.find((l) => l.severity === 'WARNING')).toMatchObject({
      message: 'job events not published; the outbox keeps them for the next drain',
      reason: 'PERMISSION_DENIED: not a publisher',
      jobId: idOf(1),
    });
    refuse = false;
    await outbox.drain();
    expect(published.map((e) => e.jobId)).toEqual([idOf(1)]);
    expect(await ledger.pendingEvents(10)).toEqual([]);
  });

  it('publishes what is stored while it drains, in the drain a caller waits for', async () => {
    const ledger = new SqliteLedger(':memory:');
    await queue(ledger, 1);
    const published: string[] = [];
    let stored = false;
    const sink: JobEventSink = {
      async publish(event) {
        published.push(event.jobId);
        if (!stored) {
          stored = true;
          await queue(ledger, 2); // a request's write while the first publish is under way
          void outbox.drain();
        }
      },
    };
    const outbox = new EventOutbox({ ledger, sink, logger: recordingLogger().logger });
    await outbox.drain();
    expect(published).toEqual([idOf(1), idOf(2)]);
    expect(await ledger.pendingEvents(10)).toEqual([]);
  });

  it('loses nothing when two drain the same outbox at once; a repeat keeps its event id', async () => {
    const ledger = new SqliteLedger(':memory:');
    for (let n = 1; n <= 150; n++) await queue(ledger, n);
    const published: string[] = [];
    const sink: JobEventSink = {
      async publish(event) {
        await new Promise((resolve) => setImmediate(resolve));
        published.push(event.eventId);
      },
    };
    const logger = recordingLogger().logger;
    const one = new EventOutbox({ ledger, sink, logger });
    const other = new EventOutbox({ ledger, sink, logger });
    await Promise.all([one.drain(), other.drain()]);
    const stored = new Set(
      (await Promise.all(Array.from({ length: 150 }, (_, i) => ledger.get(idOf(i + 1))))).map(
        (job) => eventsFor(undefined, job!)[0]!.eventId,
      ),
    );
    expect(new Set(published)).toEqual(stored);
    expect(await ledger.pendingEvents(10)).toEqual([]);
  });
});
