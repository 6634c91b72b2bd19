// The dispatcher with the real Cloud Run and Compute Engine launchers (the real client libraries,
// REST, against the loopback doubles): completions lost on purpose are recovered by the reconcile
// pass from what the platform says, and cancel sends the right API calls.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import { parseRoutingConfig, type BlobStore, type Job, type StorageObject } from '@pipeline/core';
import { Dispatcher } from '../../src/dispatcher.ts';
import type { Reconciler } from '../../src/reconciler.ts';
import { reconcilerBeside } from '../support.ts';
import { closeGoogleClients } from '../../src/gcp/clients.ts';
import { ComputeEngineLauncher } from '../../src/gcp/compute-launcher.ts';
import { testComputeSettings, testRunLauncher } from './test-launchers.ts';
import { SqliteLedger } from '../../src/local/sqlite-ledger.ts';
import { createLogger } from '../../src/logger.ts';
import { startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';

const auth = new OAuth2Client();
auth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 24 * 3600 * 1000 });

/** Output objects the test says exist (the _SUCCESS markers); gs:// URIs as on Google Cloud. */
class MarkerStore implements BlobStore {
  readonly objects = new Map<string, StorageObject>();
  async stat(bucket: string, name: string) {
    return this.objects.get(`${bucket}/${name}`);
  }
  uri(bucket: string, name: string) {
    return `gs://${bucket}/${name}`;
  }
  readonly contents = new Map<string, string>();
  async read(uri: string) {
    const text = this.contents.get(uri.replace(/^gs:\/\//, ''));
    return text === undefined ? undefined : { data: Buffer.from(text), size: text.length };
  }
  async list() {
    return [];
  }
  async get() {
    return undefined;
  }
  async putIf() {
    return true;
  }
  put(bucket: string, name: string, content = '') {
    this.contents.set(`${bucket}/${name}`, content);
    this.objects.set(`${bucket}/${name}`, {
      bucket,
      name,
      generation: '1',
      size: 2,
      metadata: {},
      timeCreated: new Date().toISOString(),
    });
  }
}

const ROUTING = parseRoutingConfig({
  rules: [
    { name: 'on-vm', match: { minCpu: 4 }, target: 'vm', job: { task: 'logreg', spot: true } },
    { name: 'containers', target: 'cloud-run-job', job: { task: 'logreg' } },
  ],
});

let run: FakeRun;
let compute: FakeCompute;
let ledger: SqliteLedger;
let blobs: MarkerStore;
let dispatcher: Dispatcher;
let reconciler: Reconciler;

beforeAll(async () => {
  run = await startFakeRun();
  compute = await startFakeCompute();
});
afterAll(async () => {
  await run.close();
  await compute.close();
  await closeGoogleClients();
});

beforeEach(() => {
  ledger = new SqliteLedger(':memory:');
  blobs = new MarkerStore();
  dispatcher = new Dispatcher({
    ledger,
    blobs,
    routing: ROUTING,
    outputBucket: 'acme-output',
    logger: createLogger(undefined, 'silent'),
    reconcile: { goneGraceSeconds: 0 }, // judged in the pass after the one that notices
    launchers: {
      'cloud-run-job': testRunLauncher(run.endpoint, auth),
      vm: new ComputeEngineLauncher(testComputeSettings(compute.endpoint, auth)),
    },
  });
  reconciler = reconcilerBeside(dispatcher);
});
afterEach(() => {
  ledger.close();
  run.requests.splice(0);
  compute.requests.splice(0);
});

async function submit(cpu?: number): Promise<Job> {
  const intake = await dispatcher.submitContainer({
    task: 'logreg',
    args: [],
    env: {},
    declared: cpu === undefined ? {} : { cpu },
  });
  if (intake.outcome !== 'created') throw new Error(intake.outcome);
  expect(intake.job.state).toBe('LAUNCHED');
  return intake.job;
}

const requests = (server: FakeRun | FakeCompute) => server.requests.map((r) => `${r.method} ${r.path}`);

describe('Cloud Run: completions lost on purpose', () => {
  it('closes a succeeded execution as SUCCEEDED', async () => {
    const job = await submit();
    expect((await reconciler.pass()).closed).toEqual([]); // still running
    run.settle(job.execution!, { phase: 'succeeded' });
    const report = await reconciler.pass();
    expect(report.closed).toEqual([
      {
        id: job.id,
        state: 'SUCCEEDED',
        detail: 'the platform reports exit code 0; its completion never arrived',
      },
    ]);
    expect(requests(run)).toContain(`GET /v2/${job.execution}`);
  });

  it('closes a failed execution with its task exit code: 4 is not retried', async () => {
    const job = await submit();
    run.settle(job.execution!, { phase: 'failed', exitCode: 4, message: 'Task failed with exit code 4' });
    await reconciler.pass();
    const failed = (await ledger.get(job.id))!;
    expect(failed).toMatchObject({ state: 'FAILED', exitCode: 4 });
    expect(failed.attempts[0]).toMatchObject({ outcome: 'failed', exitCode: 4 });
  });

  it('cancel sends executions:cancel for the running execution', async () => {
    const job = await submit();
    run.requests.splice(0);
    const cancelled = await dispatcher.cancel(job.id);
    expect(cancelled.state).toBe('CANCELLED');
    expect(requests(run)).toEqual([`POST /v2/${job.execution}:cancel`]);
  });
});

describe('Compute Engine: completions lost on purpose', () => {
  it('a VM gone without _SUCCESS is lost and retried; one gone with _SUCCESS succeeded', async () => {
    const job = await submit(4);
    expect(job.target).toBe('vm');
    const name = job.execution!.split('/').pop()!;
    expect(compute.instances.get(name)?.status).toBe('RUNNING');
    expect((await reconciler.pass()).closed).toEqual([]);

    compute.instances.delete(name); // it deleted itself; its completion never arrived
    await reconciler.pass(); // noticed gone
    expect((await ledger.get(job.id))!.state).toBe('LAUNCHED');
    await reconciler.pass();
    const lost = (await ledger.get(job.id))!;
    expect(lost).toMatchObject({ state: 'SCHEDULED', attempt: 2 });
    expect(lost.attempts[0]).toMatchObject({ outcome: 'lost' });
    expect(lost.attempts[0].error).toContain('no longer exists and no completion arrived');

    const second = (await dispatcher.launchDue(lost))!;
    expect(second).toMatchObject({ state: 'LAUNCHED', attempt: 2 });
    expect(second.execution).toMatch(/-a2$/);
    blobs.put('acme-output', `runs/${job.id}/_SUCCESS`, JSON.stringify({ jobId: job.id, attempt: 2 }));
    compute.instances.delete(second.execution!.split('/').pop()!);
    await reconciler.pass();
    await reconciler.pass();
    expect((await ledger.get(job.id))!).toMatchObject({ state: 'SUCCEEDED', attempt: 2 });
  });

  it('cancel deletes the VM', async () => {
    const job = await submit(4);
    compute.requests.splice(0);
    await dispatcher.cancel(job.id);
    const name = job.execution!.split('/').pop()!;
    expect(requests(compute)).toEqual([
      `DELETE /compute/v1/projects/acme/zones/europe-west1-b/instances/${name}`,
    ]);
    expect((await ledger.get(job.id))!.state).toBe('CANCELLED');
  });
});
