// The real dispatcher process (src/index.ts, as `npm run dispatcher` starts it) with no credentials at
// all: no metadata server, a HOME without gcloud's ADC file, and GOOGLE_APPLICATION_CREDENTIALS unset
// or naming a file that is not there. A push is answered 503 (the claim given back), the process
// stays up, and once credentials exist (the file appears: a service account key this test made,
// which the Run client signs its own JWT with, so nothing leaves loopback) the redelivery launches
// the job exactly once.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, createVerify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { jobIdFor } from '@pipeline/core';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { LOOPBACK_GUARD } from '../../../../test/support/run-worker.ts';
import { testCloudEnv } from './test-launchers.ts';

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

async function stopDispatcher({ child }: Dispatcher): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const CASES = [
  {
    name: 'no Application Default Credentials anywhere',
    env: (): Record<string, string> => ({}),
    keyFile: (home: string) => path.join(home, '.config/gcloud/application_default_credentials.json'),
    error: 'Could not load the default credentials',
  },
  {
    name: 'GOOGLE_APPLICATION_CREDENTIALS naming a file not there yet',
    env: (home: string): Record<string, string> => ({
      GOOGLE_APPLICATION_CREDENTIALS: path.join(home, 'keys/dispatcher.json'),
    }),
    keyFile: (home: string) => path.join(home, 'keys/dispatcher.json'),
    error: 'Unable to read the credential file specified by the GOOGLE_APPLICATION_CREDENTIALS',
  },
];

describeWithEmulators(['firestore'], 'the dispatcher process without credentials', () => {
  let firestore: Emulator;
  let run: FakeRun;
  let compute: FakeCompute;
  let gcs: FakeGcs;
  const started: Dispatcher[] = [];
  const homes: string[] = [];

  beforeAll(async () => {
    [firestore, run, compute, gcs] = await Promise.all([
      startEmulator('firestore'),
      startFakeRun(),
      startFakeCompute(),
      startFakeGcs(),
    ]);
  }, 120_000);

  afterEach(async () => {
    await Promise.all(started.splice(0).map(stopDispatcher));
  }, 30_000);

  afterAll(async () => {
    await Promise.all([firestore?.stop(), run?.close(), compute?.close(), gcs?.close()]);
    for (const home of homes) fs.rmSync(home, { recursive: true, force: true });
  }, 60_000);

  /** The dispatcher with a HOME of its own and a ledger collection of its own; nothing else to find. */
  async function dispatcherWithout(env: (home: string) => Record<string, string>, collection: string) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'no-adc-home-'));
    homes.push(home);
    const dispatcher = await startDispatcher({
      HOME: home,
      METADATA_SERVER_DETECTION: 'none',
      ...testCloudEnv(),
      HOST: '127.0.0.1',
      PORT: '0',
      LEDGER_COLLECTION: collection,
      FIRESTORE_EMULATOR_HOST: firestore.host,
      STORAGE_EMULATOR_HOST: gcs.url,
      RUN_API_ENDPOINT: run.endpoint,
      COMPUTE_API_ENDPOINT: compute.endpoint,
      ...env(home),
    });
    started.push(dispatcher);
    return { dispatcher, home };
  }

  it.each(CASES.map((c, i) => ({ ...c, collection: `jobs-${i}` })))(
    'with $name: queues the job and stays up, then launches it once when the key appears',
    async ({ env, keyFile, error, collection }) => {
      const { dispatcher, home } = await dispatcherWithout(env, collection);
      const push = () =>
        fetch(`${dispatcher.url}/pubsub/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(PUSH),
        });
      const before = run.requests.length;
      const runJobs = () =>
        run.requests.slice(before).filter((r) => r.method === 'POST' && r.path.endsWith(':run'));
      const alive = () => dispatcher.child.exitCode === null && dispatcher.child.signalCode === null;
      const id = jobIdFor(OBJECT.bucket, OBJECT.name, OBJECT.generation);

      const first = await push().catch((err) => {
        throw new Error(`push failed: ${err}; stderr: ${dispatcher.stderr()}`);
      });
      const body = (await first.json()) as { job: { state: string; queue: { reason: string } } };
      expect(first.status, JSON.stringify(body)).toBe(201);
      expect(body.job.state).toBe('QUEUED');
      expect(body.job.queue.reason).toContain(error);
      // Whatever the libraries left pending has had its turn by the time another request is answered.
      expect((await fetch(`${dispatcher.url}/healthz`)).status).toBe(200);
      expect(alive(), dispatcher.stderr()).toBe(true);
      expect(runJobs()).toHaveLength(0);
      // It waits in the ledger, acknowledged: nothing depends on Pub/Sub delivering it again.
      const waiting = await fetch(`${dispatcher.url}/jobs/${id}`);
      expect(waiting.status).toBe(200);
      const { queue } = (await waiting.json()) as { queue: { queuedAt: string; notBefore: string } };

      // A key put in place (or `gcloud auth application-default login`): no restart.
      const key = serviceAccountKey();
      fs.mkdirSync(path.dirname(keyFile(home)), { recursive: true });
      fs.writeFileSync(keyFile(home), JSON.stringify(key.json));

      // After its backoff (2 s, recorded as queue.notBefore), the next drain launches it: here, a
      // redelivery (a duplicate, 200).
      const notBefore = Date.parse(queue.notBefore);
      expect(notBefore - Date.parse(queue.queuedAt)).toBeGreaterThanOrEqual(2000);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, notBefore - Date.now()) + 50));
      const second = await push();
      expect(second.status, await second.clone().text()).toBe(200);
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

      // A third delivery is a duplicate, and nothing escaped to the process-level handlers.
      expect((await push()).status).toBe(200);
      expect(runJobs()).toHaveLength(1);
      expect(alive(), dispatcher.stderr()).toBe(true);
      expect(dispatcher.logs.filter((l) => l.severity === 'CRITICAL')).toEqual([]);
    },
    // A process of its own that loads the Google clients: slow to start on a busy machine.
    60_000,
  );
});
