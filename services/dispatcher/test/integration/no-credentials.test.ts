// The real dispatcher process (src/index.ts, as `npm run dispatcher` starts it) with no credentials at
// all: no GOOGLE_APPLICATION_CREDENTIALS, a HOME without gcloud's ADC file, no metadata server. A push
// is answered 503 (the claim given back), the process stays up, and once credentials exist (the ADC
// file appears: a service account key this test made, which the Run client signs its own JWT with,
// so nothing leaves loopback) the redelivery launches the job exactly once.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, createVerify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { jobIdFor } from '@pipeline/core';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { LOOPBACK_GUARD } from '../../../../test/support/run-worker.ts';

const ROOT = path.resolve(import.meta.dirname, '../../../..');
const INDEX = path.join(ROOT, 'services/dispatcher/src/index.ts');
const PUSH = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'packages/core/test/fixtures/gcs-object-finalize.push.json'), 'utf8'),
);
const OBJECT = JSON.parse(Buffer.from(PUSH.message.data, 'base64').toString('utf8'));
const PROJECT = 'test-project';
const SERVICE_ACCOUNT = `dispatcher@${PROJECT}.iam.gserviceaccount.com`;

interface Dispatcher {
  child: ChildProcess;
  url: string;
  logs: Record<string, unknown>[];
  stderr: () => string;
}

/** Starts src/index.ts with only `env` (and PATH), the loopback guard loaded; resolves once it listens. */
async function startDispatcher(env: Record<string, string>): Promise<Dispatcher> {
  const child = spawn(process.execPath, ['--import', LOOPBACK_GUARD, INDEX], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let pending = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const listening = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`the dispatcher exited (${code}) before listening: ${stderr}`)),
    );
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === '') continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.message === 'dispatcher listening') resolve(entry.port as number);
      }
    });
  });
  const port = await listening;
  return { child, url: `http://127.0.0.1:${port}`, logs, stderr: () => stderr };
}

/** A service account key as Google issues it, with a key pair made here. */
function serviceAccountKey() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicKey,
    json: {
      type: 'service_account',
      project_id: PROJECT,
      private_key_id: 'test-key-1',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: SERVICE_ACCOUNT,
      client_id: '1234567890',
      token_uri: 'https://oauth2.googleapis.com/token',
    },
  };
}

describeWithEmulators(['firestore'], 'the dispatcher process without credentials', () => {
  let firestore: Emulator;
  let run: FakeRun;
  let compute: FakeCompute;
  let gcs: FakeGcs;
  let home: string;
  let dispatcher: Dispatcher;

  beforeAll(async () => {
    [firestore, run, compute, gcs] = await Promise.all([
      startEmulator('firestore'),
      startFakeRun(),
      startFakeCompute(),
      startFakeGcs(),
    ]);
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'no-adc-home-'));
    dispatcher = await startDispatcher({
      HOME: home,
      METADATA_SERVER_DETECTION: 'none',
      GOOGLE_CLOUD_PROJECT: PROJECT,
      REGION: 'us-central1',
      ZONE: 'us-central1-a',
      OUTPUT_BUCKET: 'acme-pipeline-output',
      WORKER_JOB: 'pipeline-worker',
      WORKER_IMAGE: 'us-central1-docker.pkg.dev/test-project/pipeline/worker:1',
      WORKER_SERVICE_ACCOUNT: `worker@${PROJECT}.iam.gserviceaccount.com`,
      COMPLETIONS_TOPIC: 'completions',
      PUSH_AUTH: 'off',
      HOST: '127.0.0.1',
      PORT: '0',
      FIRESTORE_EMULATOR_HOST: firestore.host,
      STORAGE_EMULATOR_HOST: gcs.url,
      RUN_API_ENDPOINT: run.endpoint,
      COMPUTE_API_ENDPOINT: compute.endpoint,
    });
  }, 120_000);

  afterAll(async () => {
    const { child } = dispatcher ?? {};
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await Promise.all([firestore?.stop(), run?.close(), compute?.close(), gcs?.close()]);
    if (home !== undefined) fs.rmSync(home, { recursive: true, force: true });
  }, 60_000);

  const push = () =>
    fetch(`${dispatcher.url}/pubsub/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(PUSH),
    });
  const runJobs = () => run.requests.filter((r) => r.method === 'POST' && r.path.endsWith(':run'));
  const alive = () => dispatcher.child.exitCode === null && dispatcher.child.signalCode === null;

  it('answers a push 503 and stays up, then launches the job once when credentials appear', async () => {
    const id = jobIdFor(OBJECT.bucket, OBJECT.name, OBJECT.generation);
    const first = await push().catch((err) => {
      throw new Error(`push failed: ${err}; stderr: ${dispatcher.stderr()}`);
    });
    const body = (await first.json()) as { error: string };
    expect(first.status, JSON.stringify(body)).toBe(503);
    expect(body.error).toContain('Could not load the default credentials');
    // Whatever the libraries left pending has had its turn by the time another request is answered.
    const health = await fetch(`${dispatcher.url}/healthz`);
    expect(health.status).toBe(200);
    expect(alive(), dispatcher.stderr()).toBe(true);
    expect(runJobs()).toHaveLength(0);
    // The claim was given back: the job is not in the ledger, so the redelivery can claim it.
    expect((await fetch(`${dispatcher.url}/jobs/${id}`)).status).toBe(404);

    // `gcloud auth application-default login` (or a key) writes the well-known file: no restart.
    const key = serviceAccountKey();
    fs.mkdirSync(path.join(home, '.config/gcloud'), { recursive: true });
    fs.writeFileSync(
      path.join(home, '.config/gcloud/application_default_credentials.json'),
      JSON.stringify(key.json),
    );

    const second = await push();
    expect(second.status, await second.clone().text()).toBe(201);
    expect(((await second.json()) as { state: string }).state).toBe('LAUNCHED');
    expect(runJobs()).toHaveLength(1);
    // The call carried a JWT signed with that key: the credentials came from the file.
    const [scheme, jwt] = String(runJobs()[0].headers.authorization).split(' ');
    expect(scheme).toBe('Bearer');
    const [header, payload, signature] = jwt.split('.');
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString())).toMatchObject({
      iss: SERVICE_ACCOUNT,
      sub: SERVICE_ACCOUNT,
    });
    const verified = createVerify('RSA-SHA256')
      .update(`${header}.${payload}`)
      .verify(key.publicKey, Buffer.from(signature, 'base64url'));
    expect(verified).toBe(true);

    // A third delivery is a duplicate, and nothing crashed along the way.
    expect((await push()).status).toBe(200);
    expect(runJobs()).toHaveLength(1);
    expect(alive(), dispatcher.stderr()).toBe(true);
    expect(dispatcher.logs.filter((l) => l.severity === 'CRITICAL')).toEqual([]);
  });
});
