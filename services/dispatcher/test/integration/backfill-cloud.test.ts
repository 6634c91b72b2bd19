// A backfill on the dispatcher as Google Cloud runs it (gcp/wiring.ts): the ledger and the backfill
// records on the Firestore emulator, the input bucket on the Cloud Storage double listed by the real
// client a page at a time, and Cloud Run Jobs on its REST double with room for 3 executions. The
// backfill goes on across reconcile passes, as Cloud Scheduler's would carry it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { Firestore } from '@google-cloud/firestore';
import { OAuth2Client } from 'google-auth-library';
import type { Backfill, Job } from '@pipeline/core';
import { parseConfig } from '../../src/config.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
import { createLogger } from '../../src/logger.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { testCloudEnv } from './test-launchers.ts';
import { emulatorFirestore } from '../../../../test/support/firestore-client.ts';

const INPUT = 'acme-pipeline-input';
const OBJECTS = 120;
const MAX_EXECUTIONS = 3;

describeWithEmulators(['firestore'], 'a backfill on the cloud dispatcher', () => {
  let emulator: Emulator;
  let run: FakeRun;
  let compute: FakeCompute;
  let gcs: FakeGcs;
  let firestore: Firestore;
  let server: Server;
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    [emulator, run, compute, gcs] = await Promise.all([
      startEmulator('firestore'),
      startFakeRun(),
      startFakeCompute(),
      startFakeGcs({ maxPageItems: 50 }),
    ]);
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcs.url);
    delete process.env.FIRESTORE_EMULATOR_HOST;
    const routing = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'routing-')), 'pipeline.config.json');
    fs.writeFileSync(
      routing,
      JSON.stringify({
        rules: [{ name: 'csv', match: { path: '**' }, target: 'cloud-run-job', job: { task: 'logreg' } }],
      }),
    );
    const config = parseConfig({
      ...testCloudEnv(),
      PIPELINE_CONFIG: routing,
      RUN_API_ENDPOINT: run.endpoint,
      COMPUTE_API_ENDPOINT: compute.endpoint,
      RUN_MAX_EXECUTIONS: String(MAX_EXECUTIONS),
      RUN_JOBS_PER_MINUTE: '100000',
    });
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    firestore = emulatorFirestore(emulator.host);
    const logger = createLogger(new Writable({ write: (_c, _e, done) => done() }), 'silent');
    const cloud = buildCloudDispatcher(config, logger, { authClient, firestore: async () => firestore });
    close = cloud.close;
    server = await new Promise((resolve) => {
      const s = cloud.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (let i = 0; i < OBJECTS; i++)
      gcs.put(INPUT, `2025/day-${String(i).padStart(3, '0')}.csv`, 'a,label\n1,0\n');
  }, 120_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => {
      if (server === undefined) return resolve();
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    await close?.();
    await firestore?.terminate();
    vi.unstubAllEnvs();
    await Promise.all([emulator?.stop(), run?.close(), compute?.close(), gcs?.close()]);
  });

  const call = async <T>(
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  /** POST /reconcile, as Cloud Scheduler does, until the backfill has ended; within a deadline. */
  async function untilEnded(id: string): Promise<Backfill> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { body } = await call<Backfill>('GET', `/backfills/${id}`);
      if (body.state !== 'RUNNING') return body;
      if (Date.now() > deadline) throw new Error(`backfill ${id} still RUNNING`);
      expect((await call('POST', '/reconcile')).status).toBe(200);
    }
  }

  async function jobs(): Promise<Job[]> {
    const { docs } = await firestore.collection('jobs').get();
    return docs.map((doc) => doc.data() as Job);
  }

  it('makes one job per object, launches only what Cloud Run has room for, and a second is a no-op', async () => {
    const started = await call<Backfill>('POST', '/backfill', { source: `gs://${INPUT}/2025/` });
    expect(started.status).toBe(202);
    const done = await untilEnded(started.body.id);
    expect(done).toMatchObject({ state: 'DONE', pages: Math.ceil(OBJECTS / 50) });
    expect(done.counts).toMatchObject({ listed: OBJECTS, submitted: OBJECTS, skipped: 0, errors: 0 });
    const made = await jobs();
    expect(made).toHaveLength(OBJECTS);
    expect(made.filter((j) => j.state === 'LAUNCHED' || j.state === 'RUNNING')).toHaveLength(MAX_EXECUTIONS);
    expect(made.filter((j) => j.state === 'QUEUED')).toHaveLength(OBJECTS - MAX_EXECUTIONS);
    expect(run.executions).toHaveLength(MAX_EXECUTIONS);

    // The record is in its own collection beside the ledger's.
    const stored = await firestore.collection('jobs-backfills').doc(started.body.id).get();
    expect(stored.get('state')).toBe('DONE');

    const again = await call<Backfill>('POST', '/backfill', { bucket: INPUT, prefix: '2025/' });
    expect((await untilEnded(again.body.id)).counts).toMatchObject({ submitted: 0, skipped: OBJECTS });
    expect(await jobs()).toHaveLength(OBJECTS);
    expect(run.executions).toHaveLength(MAX_EXECUTIONS);
    const listed = await call<{ backfills: Backfill[] }>('GET', '/backfills');
    expect(listed.body.backfills.map((b) => b.id)).toEqual([again.body.id, started.body.id]);
  }, 180_000);
});
