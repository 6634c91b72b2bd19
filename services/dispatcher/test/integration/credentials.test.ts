// The launchers with Application Default Credentials from a metadata server (GCE_METADATA_HOST, a
// loopback double), as on Cloud Run, while that server refuses tokens and after it hands them out
// again. What a token refusal must not become: an API's answer (gax reports the metadata server's 404
// as NOT_FOUND, which would read as "the execution is gone"), a permanent launch failure, or a
// cancel that quietly did nothing.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LaunchError } from '@pipeline/core';
import { closeGoogleClients, executionsClient, jobsClient, tasksClient } from '../../src/gcp/clients.ts';
import { CloudRunJobLauncher } from '../../src/gcp/run-launcher.ts';
import { ComputeEngineLauncher } from '../../src/gcp/compute-launcher.ts';
import { startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { testComputeSettings, testLaunchRequest } from './test-launchers.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';

const TOKEN_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';

/** A metadata server whose token answer the test sets: an HTTP status, or a token. */
async function startTokenServer() {
  const state = { answer: 404 as number | 'token', tokenRequests: 0 };
  const server = http.createServer((req, res) => {
    res.setHeader('Metadata-Flavor', 'Google');
    const url = new URL(req.url ?? '/', 'http://metadata');
    if (url.pathname !== TOKEN_PATH) return void res.writeHead(404).end('not found');
    state.tokenRequests++;
    if (state.answer !== 'token') return void res.writeHead(state.answer).end('not now');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ access_token: 'metadata-token', expires_in: 3599, token_type: 'Bearer' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    state,
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('the launchers when the metadata server refuses tokens', () => {
  let metadata: Awaited<ReturnType<typeof startTokenServer>>;
  let run: FakeRun;
  let compute: FakeCompute;
  let runLauncher: CloudRunJobLauncher;
  let vmLauncher: ComputeEngineLauncher;
  let home: string;

  beforeAll(async () => {
    [metadata, run, compute] = await Promise.all([startTokenServer(), startFakeRun(), startFakeCompute()]);
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'adc-home-'));
    // Application Default Credentials find nothing but the metadata server, as on Cloud Run.
    vi.stubEnv('HOME', home);
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
    vi.stubEnv('CLOUDSDK_CONFIG', '');
    vi.stubEnv('GOOGLE_CLOUD_PROJECT', 'acme');
    vi.stubEnv('GCE_METADATA_HOST', metadata.host);
    vi.stubEnv('METADATA_SERVER_DETECTION', 'assume-present');
    const runClients = { endpoint: run.endpoint };
    runLauncher = new CloudRunJobLauncher({
      project: 'acme',
      region: 'europe-west1',
      job: 'pipeline-worker',
      client: () => jobsClient(runClients),
      executions: () => executionsClient(runClients),
      tasks: () => tasksClient(runClients),
    });
    // No authClient: Application Default Credentials, from the metadata server.
    vmLauncher = new ComputeEngineLauncher(testComputeSettings(compute.endpoint, undefined));
  });
  afterAll(async () => {
    await closeGoogleClients();
    vi.unstubAllEnvs();
    await Promise.all([metadata?.close(), run?.close(), compute?.close()]);
    fs.rmSync(home, { recursive: true, force: true });
  });
  afterEach(() => {
    metadata.state.answer = 404;
  });

  const EXECUTION =
    'projects/acme/locations/europe-west1/jobs/pipeline-worker/executions/pipeline-worker-abcde';
  const INSTANCE = 'zones/europe-west1-b/instances/pipeline-0123456789abcdef0123-a1';

  it.each([404, 403])(
    'with a token answer of %i: launches fail for now, inspect knows nothing, cancel throws, no API is called',
    async (status) => {
      metadata.state.answer = status;
      const before = metadata.state.tokenRequests;
      for (const [launcher, target, execution] of [
        [runLauncher, 'cloud-run-job', EXECUTION],
        [vmLauncher, 'vm', INSTANCE],
      ] as const) {
        const launched = await rejection(launcher.launch(testLaunchRequest(target)));
        expect(launched).toBeInstanceOf(LaunchError);
        expect((launched as LaunchError).retryable).toBe(true);
        expect((launched as LaunchError).message).toContain('could not get a token');

        const status = await launcher.inspect(execution);
        expect(status.kind).toBe('unknown');
        expect(status.kind === 'unknown' && status.reason).toContain('could not get a token');

        const cancelled = await rejection(launcher.cancel(execution));
        expect(String((cancelled as Error).message)).toContain('could not get a token');
      }
      expect(metadata.state.tokenRequests).toBeGreaterThan(before);
      expect(run.requests).toEqual([]);
      expect(compute.requests).toEqual([]);
    },
  );

  it('launches with the token once the metadata server hands one out, on the same clients', async () => {
    metadata.state.answer = 'token';
    const { execution } = await runLauncher.launch(testLaunchRequest('cloud-run-job'));
    expect(execution).toBe(run.executions.at(-1));
    const runs = run.requests.filter((r) => r.path.endsWith(':run'));
    expect(runs).toHaveLength(1);
    expect(runs[0].headers.authorization).toBe('Bearer metadata-token');
    expect(await runLauncher.inspect(execution)).toEqual({ kind: 'running' });

    await vmLauncher.launch(testLaunchRequest('vm'));
    const inserts = compute.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances'));
    expect(inserts).toHaveLength(1);
    expect(inserts[0].headers.authorization).toBe('Bearer metadata-token');
  });
});
