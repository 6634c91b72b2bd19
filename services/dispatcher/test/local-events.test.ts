// Local mode's job events: a file dropped into the input folder runs, and each of its job's
// transitions reaches events.ndjson and a client of GET /events (Server-Sent Events) with the same
// event id; a client that goes away is let go; events a stopped pipeline stored but did not publish
// go out at the next start.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventsFor,
  newJob,
  parseJobEvent,
  parseRoutingConfig,
  transition,
  type JobEvent,
} from '@pipeline/core';
import { startLocalPipeline, type LocalPipeline } from '../src/local/pipeline.ts';
import { SqliteLedger } from '../src/local/sqlite-ledger.ts';
import { createLogger } from '../src/logger.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

const ROUTING = parseRoutingConfig({
  rules: [{ name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job: { task: 'logreg' } }],
});

function smallCsv(rows = 60): string {
  const lines = ['x1,x2,label'];
  for (let i = 0; i < rows; i++)
    lines.push(`${(i % 9) - 4},${(i * 7) % 5},${(i % 9) - 4 + ((i * 7) % 5) / 2 > 0 ? 1 : 0}`);
  return `${lines.join('\n')}\n`;
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface Frame {
  id?: string;
  data?: string;
  comment?: string;
}

/** A GET /events client: the frames it has read so far, and a way to hang up. */
function connect(url: string, headers: Record<string, string> = {}) {
  const frames: Frame[] = [];
  let status: number | undefined;
  let contentType: string | undefined;
  const request = http.get(`${url}/events`, { headers }, (res) => {
    status = res.statusCode;
    contentType = res.headers['content-type'];
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const frame: Frame = {};
        for (const line of buffer.slice(0, end).split('\n')) {
          if (line.startsWith('id: ')) frame.id = line.slice(4);
          else if (line.startsWith('data: ')) frame.data = line.slice(6);
          else if (line.startsWith(': ')) frame.comment = line.slice(2);
        }
        frames.push(frame);
        buffer = buffer.slice(end + 2);
      }
    });
  });
  request.on('error', () => {}); // hung up by the test
  return {
    frames,
    status: () => status,
    contentType: () => contentType,
    events: () => frames.flatMap((f) => (f.data === undefined ? [] : [JSON.parse(f.data) as JobEvent])),
    close: () => request.destroy(),
  };
}

const fileEvents = (dir: string): JobEvent[] => {
  const file = path.join(dir, 'events.ndjson');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const parsed = parseJobEvent(JSON.parse(line));
      if (parsed.kind !== 'event') throw new Error(parsed.reason);
      return parsed.event;
    });
};

describe('local job events', () => {
  let dir: string;
  let pipeline: LocalPipeline;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-events-'));
    pipeline = await startLocalPipeline({
      root: dir,
      routing: ROUTING,
      port: 0,
      logger: createLogger(undefined, 'silent'),
      nodeOptions: ['--import', LOOPBACK_GUARD],
      scanIntervalMs: 50,
      quietMs: 150,
      eventsHeartbeatMs: 100,
    });
  });

  afterAll(async () => {
    await pipeline?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends each transition to events.ndjson and to GET /events, with the event id as the SSE id', async () => {
    const client = connect(pipeline.url);
    await until(() => (client.frames.some((f) => f.comment === 'connected') ? true : undefined));
    expect(client.status()).toBe(200);
    expect(client.contentType()).toMatch(/^text\/event-stream/);

    fs.writeFileSync(path.join(dir, 'input', 'events.csv'), smallCsv());
    const streamed = await until(() => {
      const events = client.events();
      return events.some((e) => e.state === 'SUCCEEDED') ? events : undefined;
    });
    expect(streamed.map((e) => e.state)).toEqual(['QUEUED', 'LAUNCHED', 'RUNNING', 'SUCCEEDED']);
    const job = (await pipeline.ledger.get(streamed[0]!.jobId))!;
    expect(job.state).toBe('SUCCEEDED');
    expect(streamed[3]).toMatchObject({
      source: { kind: 'object', bucket: 'input', name: 'events.csv' },
      exitCode: 0,
    });
    for (const frame of client.frames.filter((f) => f.data !== undefined))
      expect(frame.id).toBe((JSON.parse(frame.data!) as JobEvent).eventId);

    await pipeline.idle();
    expect(fileEvents(dir)).toEqual(streamed);
    expect(await pipeline.ledger.pendingEvents(10)).toEqual([]);

    // An idle stream gets heartbeats; a client that hangs up is let go.
    await until(() => (client.frames.some((f) => f.comment === 'heartbeat') ? true : undefined));
    expect(pipeline.events.clients).toBe(1);
    client.close();
    await until(() => (pipeline.events.clients === 0 ? true : undefined));
  });

  it('answers GET /events only to this machine, as the other local routes', async () => {
    const stranger = connect(pipeline.url, { host: 'evil.example' });
    await until(() => stranger.status());
    expect(stranger.status()).toBe(403);
    stranger.close();
    expect(pipeline.events.clients).toBe(0);
  });
});

it('publishes at start what a pipeline stopped between its ledger write and the publish left in the outbox', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-events-left-'));
  // What a killed pipeline leaves: a job change and its event committed, the event never published.
  const ledger = new SqliteLedger(path.join(dir, 'pipeline.db'));
  const at = new Date().toISOString();
  const job = newJob('0e'.repeat(16), { kind: 'request', task: 'logreg', args: [], env: {} }, at);
  const failed = transition(job, 'FAILED', at, { error: 'refused' }, 'refused');
  const [left] = eventsFor(undefined, failed);
  await ledger.claim(failed, 60_000, [left!]);
  ledger.close();

  const pipeline = await startLocalPipeline({
    root: dir,
    routing: ROUTING,
    port: 0,
    logger: createLogger(undefined, 'silent'),
    reconcileIntervalMs: 0,
  });
  try {
    await pipeline.idle();
    expect(fileEvents(dir)).toEqual([left]);
    expect(await pipeline.ledger.pendingEvents(10)).toEqual([]);
  } finally {
    await pipeline.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
