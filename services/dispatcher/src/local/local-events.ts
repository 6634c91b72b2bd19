// Local mode's job events: the sink the outbox drains into (event-outbox.ts). Each event is appended
// as one JSON line to <local dir>/events.ndjson, then sent to every client of GET /events, a
// Server-Sent Events stream (the dashboard's EventSource): `id:` is the eventId, `data:` the event's
// JSON (one line: JSON.stringify escapes newlines). An event is acknowledged to the outbox once its
// line is written; a client that is not connected then does not get it (the file has them all).
//
// Delivery is at least once, as on Google Cloud: a pipeline stopped between the append and the
// outbox's removal appends the event again at its next start, with the same eventId.
import fs from 'node:fs';
import type { RequestHandler } from 'express';
import type { JobEvent } from '@pipeline/core';
import type { JobEventSink } from '../event-outbox.ts';

/** How often an idle stream sends a comment line, so that proxies and the browser keep it open. */
const HEARTBEAT_MS = 15_000;

type Listener = (event: JobEvent) => void;

export class LocalJobEvents implements JobEventSink {
  readonly file: string;
  private readonly heartbeatMs: number;
  private readonly listeners = new Set<Listener>();
  /** Appends one after another, so that lines keep the order the outbox gave them. */
  private appending: Promise<void> = Promise.resolve();

  constructor(file: string, options: { heartbeatMs?: number } = {}) {
    this.file = file;
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  }

  publish(event: JobEvent): Promise<void> {
    const line = `${JSON.stringify(event)}\n`;
    const appended = this.appending.then(() => fs.promises.appendFile(this.file, line, 'utf8'));
    this.appending = appended.catch(() => {}); // the next append does not inherit this one's failure
    return appended.then(() => {
      for (const listener of this.listeners) listener(event);
    });
  }

  /** How many GET /events clients are connected (tests check that a closed one is let go). */
  get clients(): number {
    return this.listeners.size;
  }

  /** Calls `listener` with each event from now on; the function returned stops it. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** GET /events: the stream, until the client goes away (or the server closes its connections). */
  streamHandler(): RequestHandler {
    return (req, res) => {
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        Connection: 'keep-alive',
        'X-Content-Type-Options': 'nosniff',
      });
      // The browser reconnects 2 s after a drop; the first line tells the client the stream is open.
      res.write('retry: 2000\n: connected\n\n');
      const unsubscribe = this.subscribe((event) => {
        res.write(`id: ${event.eventId}\ndata: ${JSON.stringify(event)}\n\n`);
      });
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), this.heartbeatMs);
      heartbeat.unref();
      const close = () => {
        clearInterval(heartbeat);
        unsubscribe();
      };
      req.once('close', close);
      res.once('close', close);
    };
  }
}
