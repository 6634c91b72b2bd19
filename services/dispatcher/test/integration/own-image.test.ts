// POST /jobs with an image of its own, on the dispatcher as deployed: the shipped pipeline.config.json
// (the repository's own, whose `containers` rule targets cloud-run-job), the Firestore emulator as the
// ledger, and the real Run and Compute clients against their loopback doubles. A Cloud Run execution
// cannot run another image, so the job must reach Compute, never Run.
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Firestore } from '@google-cloud/firestore';
import { OAuth2Client } from 'google-auth-library';
import type { Job } from '@pipeline/core';
import { parseConfig } from '../../src/config.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
import { createLogger } from '../../src/logger.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { testCloudEnv } from './test-launchers.ts';
import { emulatorFirestore } from '../../../../test/support/firestore-client.ts';

const PROJECT = 'test-project';
const SHIPPED_CONFIG = path.resolve(import.meta.dirname, '../../../../pipeline.config.json');
const IMAGE = 'us-docker.pkg.dev/test-project/renders/render:2';

describeWithEmulators(['firestore'], 'a container run with its own image, in cloud wiring', () => {
  let firestoreEmulator: Emulator;
  let firestore: Firestore;
  let run: FakeRun;
  let compute: FakeCompute;
  let server: Server;
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    [firestoreEmulator, run, compute] = await Promise.all([
      startEmulator('firestore'),
      startFakeRun(),
      startFakeCompute(),
    ]);
    const config = parseConfig({
      ...testCloudEnv(),
      RUN_API_ENDPOINT: run.endpoint,
      COMPUTE_API_ENDPOINT: compute.endpoint,
    });
    // No PIPELINE_CONFIG: the bundled file, which is the repository's.
    expect(config.pipelineConfig).toBe(SHIPPED_CONFIG);
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    firestore = emulatorFirestore(firestoreEmulator.host, PROJECT);
    const logger = createLogger(new Writable({ write: (_chunk, _encoding, done) => done() }));
    const cloud = buildCloudDispatcher(config, logger, { authClient, firestore: async () => firestore });
    close = cloud.close;
    server = await new Promise((resolve) => {
      const s = cloud.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 120_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    await close?.();
    await firestore?.terminate();
    await Promise.all([firestoreEmulator?.stop(), run?.close(), compute?.close()]);
  }, 60_000);

  it('runs on one Compute VM, with that image, and never asks Run', async () => {
    const res = await fetch(`${url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: IMAGE, args: ['--frames', '1-10'], env: { MODE: 'draft' } }),
    });
    const body = (await res.json()) as { id: string; job: Job };
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(body.job).toMatchObject({ state: 'LAUNCHED', rule: 'containers', target: 'vm' });
    expect(body.job.reason).toBe(
      `rule "containers" matched (no conditions) and chose cloud-run-job, but the request's own image ${IMAGE} can only run on a VM: vm e2-standard-2`,
    );
    const inserts = compute.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances'));
    expect(inserts).toHaveLength(1);
    expect(inserts[0].path).toBe(`/compute/v1/projects/${PROJECT}/zones/us-central1-a/instances`);
    const items = (inserts[0].body as { metadata: { items: { key: string; value: string }[] } }).metadata
      .items;
    const task = JSON.parse(items.find((i) => i.key === 'pipeline-task')!.value);
    expect(task).toMatchObject({ jobId: body.id, image: IMAGE, args: ['--frames', '1-10'] });
    expect(task.env).toMatchObject({ MODE: 'draft', JOB_ID: body.id });
    expect(run.requests.filter((r) => r.path.endsWith(':run'))).toEqual([]);
    const stored = (await firestore.collection('jobs').doc(body.id).get()).data();
    expect(stored).toMatchObject({ state: 'LAUNCHED', target: 'vm' });
  });
});
