// The Compute launcher across the zones of a region, with the real @google-cloud/compute client
// (REST) against the loopback double: a zone out of capacity passes the VM to the next zone, a spot
// VM no zone can place becomes standard where its rule allows, a regional quota ends the launch,
// find looks in every zone, and an insert whose answer is lost is ambiguous.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import {
  jobIdFor,
  LaunchError,
  newJob,
  workerEnvironment,
  type JobTemplate,
  type LaunchRequest,
} from '@pipeline/core';
import { closeGoogleClients } from '../../src/gcp/clients.ts';
import { ComputeEngineLauncher } from '../../src/gcp/compute-launcher.ts';
import { testComputeSettings } from './test-launchers.ts';
import { computeError, startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';

const ZONES = ['europe-west1-b', 'europe-west1-c', 'europe-west1-d'];
const auth = new OAuth2Client();
auth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 24 * 3600 * 1000 });
afterAll(() => closeGoogleClients());

let objects = 0;
/** The first attempt of a job for a new object, LAUNCHED with TEMPLATE on a VM. */
function vmRequest(template: Partial<JobTemplate> = {}): LaunchRequest {
  const name = `zones/${++objects}.csv`;
  const object = { bucket: 'acme-input', name, generation: '1', size: 10, metadata: {} };
  const full: JobTemplate = { task: 'logreg', args: [], env: {}, spot: false, ...template };
  const outputUri = `gs://acme-output/${name}/`;
  const logsUri = `${outputUri}logs/attempt-1.log`;
  const received = newJob(
    jobIdFor(object.bucket, name, '1'),
    { kind: 'object', object },
    '2024-05-01T12:00:00.000Z',
  );
  const job = {
    ...received,
    state: 'LAUNCHED' as const,
    target: 'vm' as const,
    template: full,
    outputUri,
    logsUri,
  };
  const env = workerEnvironment(job, full, { inputUri: `gs://acme-input/${name}`, outputUri });
  return { job, target: 'vm', env, args: [], logsUri };
}

async function launchError(launch: Promise<unknown>): Promise<LaunchError> {
  const err = await launch.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LaunchError);
  return err as LaunchError;
}

type Sent = {
  name: string;
  machineType: string;
  scheduling: Record<string, unknown>;
  [key: string]: unknown;
};

describe('ComputeEngineLauncher across zones', () => {
  let compute: FakeCompute;
  let launcher: ComputeEngineLauncher;
  const inserts = () =>
    compute.requests
      .filter((r) => r.method === 'POST' && r.path.endsWith('/instances'))
      .map((r) => ({ zone: r.path.split('/')[6], body: r.body as Sent }));
  beforeAll(async () => {
    compute = await startFakeCompute();
    launcher = new ComputeEngineLauncher(testComputeSettings(compute.endpoint, auth, { zones: ZONES }));
  });
  afterAll(() => compute.close());
  afterEach(() => {
    compute.requests.splice(0);
    compute.instances.clear();
    compute.stockout = undefined;
    compute.cpuQuota = undefined;
  });

  it('runs the VM in the next zone when one is out of capacity, and says where it was refused', async () => {
    compute.stockout = (zone) => zone === 'europe-west1-b';
    const request = vmRequest({
      machineType: 'n1-standard-8',
      accelerator: { type: 'nvidia-tesla-t4', count: 1 },
    });
    const result = await launcher.launch(request);

    const name = `pipeline-${request.job.id.slice(0, 20)}-a1`;
    expect(result).toEqual({
      execution: `zones/europe-west1-c/instances/${name}`,
      spot: false,
      refusals: [
        expect.stringMatching(
          /^europe-west1-b: ZONE_RESOURCE_POOL_EXHAUSTED: The zone .* does not have enough resources/,
        ),
      ],
    });
    // First a look in every zone (names are unique per zone only), then b, then c with the same name.
    const gets = compute.requests.filter((r) => r.method === 'GET').map((r) => r.path.split('/')[6]);
    expect(gets.sort()).toEqual(ZONES);
    const [b, c] = inserts();
    expect([b.zone, c.zone]).toEqual(['europe-west1-b', 'europe-west1-c']);
    expect(c.body.name).toBe(b.body.name);
    expect(c.body.machineType).toBe('zones/europe-west1-c/machineTypes/n1-standard-8');
    expect(c.body.guestAccelerators).toEqual([
      { acceleratorType: 'zones/europe-west1-c/acceleratorTypes/nvidia-tesla-t4', acceleratorCount: 1 },
    ]);
    expect(compute.instances.get(name)?.zone).toMatch(/\/zones\/europe-west1-c$/);
  });

  it('refuses for capacity, retryably, when every zone is out, listing each refusal', async () => {
    compute.stockout = () => true;
    const err = await launchError(launcher.launch(vmRequest()));
    expect(err).toMatchObject({ retryable: true, capacity: true, ambiguous: false });
    for (const zone of ZONES) expect(err.message).toContain(`${zone}: ZONE_RESOURCE_POOL_EXHAUSTED`);
    expect(inserts().map((i) => i.zone)).toEqual(ZONES);
  });

  it('makes a spot VM no zone can place a standard VM where the rule allows it, and says spot: false', async () => {
    compute.stockout = (_zone, spot) => spot;
    const request = vmRequest({ spot: true, standardIfNoSpot: true });
    const result = await launcher.launch(request);

    expect(result.execution).toMatch(/^zones\/europe-west1-b\/instances\//);
    expect(result.spot).toBe(false);
    expect(result.refusals).toHaveLength(3);
    const sent = inserts();
    expect(sent.map((i) => [i.zone, i.body.scheduling.provisioningModel])).toEqual([
      ...ZONES.map((zone) => [zone, 'SPOT']),
      ['europe-west1-b', 'STANDARD'],
    ]);
    // As for any standard VM without a GPU: it may live-migrate.
    expect(sent[3].body.scheduling.onHostMaintenance).toBe('MIGRATE');
    expect(sent[0].body.scheduling.onHostMaintenance).toBe('TERMINATE');
  });

  it('keeps a standard VM with a GPU on TERMINATE, and refusals of the standard round say so', async () => {
    compute.stockout = (zone, spot) => spot || zone === 'europe-west1-b';
    const request = vmRequest({
      spot: true,
      standardIfNoSpot: true,
      machineType: 'n1-standard-4',
      accelerator: { type: 'nvidia-tesla-t4', count: 1 },
    });
    const result = await launcher.launch(request);
    expect(result).toMatchObject({ spot: false, execution: expect.stringMatching(/europe-west1-c/) });
    expect(result.refusals?.at(-1)).toMatch(/^europe-west1-b \(standard\): ZONE_RESOURCE_POOL_EXHAUSTED/);
    expect(inserts().at(-1)?.body.scheduling).toMatchObject({
      provisioningModel: 'STANDARD',
      onHostMaintenance: 'TERMINATE',
    });
  });

  it('waits for spot capacity when the rule does not allow standard: a capacity error, no standard VM', async () => {
    compute.stockout = (_zone, spot) => spot;
    const err = await launchError(launcher.launch(vmRequest({ spot: true })));
    expect(err).toMatchObject({ retryable: true, capacity: true });
    expect(inserts().every((i) => i.body.scheduling.provisioningModel === 'SPOT')).toBe(true);
    expect(inserts()).toHaveLength(3);
  });

  it('stops at a regional quota: a capacity error, and no other zone is tried', async () => {
    compute.cpuQuota = 4;
    const err = await launchError(launcher.launch(vmRequest({ machineType: 'e2-standard-8' })));
    expect(err).toMatchObject({ retryable: true, capacity: true, ambiguous: false });
    expect(err.message).toContain(
      "QUOTA_EXCEEDED: Quota 'CPUS' exceeded.  Limit: 4.0 in region europe-west1.",
    );
    expect(inserts().map((i) => i.zone)).toEqual(['europe-west1-b']);
  });

  it('adopts its VM in a later zone on 409, and one a look finds before inserting at all', async () => {
    compute.stockout = (zone) => zone === 'europe-west1-b';
    compute.failNext(
      1,
      computeError(409, 'alreadyExists', 'already exists'),
      (r) => r.path.includes('europe-west1-c/instances') && r.method === 'POST',
    );
    const adopted = await launcher.launch(vmRequest());
    expect(adopted.execution).toMatch(/^zones\/europe-west1-c\//);
    expect(adopted.refusals).toHaveLength(1);

    compute.requests.splice(0);
    const request = vmRequest({ spot: true });
    const name = `pipeline-${request.job.id.slice(0, 20)}-a1`;
    compute.instances.set(name, {
      name,
      zone: 'https://www.googleapis.com/compute/v1/projects/acme/zones/europe-west1-d',
      status: 'RUNNING',
      scheduling: { provisioningModel: 'SPOT' },
    });
    expect(await launcher.launch(request)).toEqual({
      execution: `zones/europe-west1-d/instances/${name}`,
      spot: true,
    });
    expect(inserts()).toHaveLength(0);
  });

  it('reads what an adopted VM is when the rule allows either: an earlier delivery may have fallen back', async () => {
    const oneZone = new ComputeEngineLauncher(testComputeSettings(compute.endpoint, auth));
    const request = vmRequest({ spot: true, standardIfNoSpot: true });
    const name = `pipeline-${request.job.id.slice(0, 20)}-a1`;
    compute.instances.set(name, {
      name,
      zone: 'https://www.googleapis.com/compute/v1/projects/acme/zones/europe-west1-b',
      status: 'RUNNING',
      scheduling: { provisioningModel: 'STANDARD' },
    });
    expect(await oneZone.launch(request)).toEqual({
      execution: `zones/europe-west1-b/instances/${name}`,
      spot: false,
    });
  });

  it('does not insert when a zone cannot be looked in: the VM may be there', async () => {
    compute.failNext(
      1,
      computeError(500, 'backendError', 'Backend Error'),
      (r) => r.method === 'GET' && r.path.includes('europe-west1-c'),
    );
    const err = await launchError(launcher.launch(vmRequest()));
    expect(err).toMatchObject({ retryable: true, ambiguous: false, capacity: false });
    expect(err.message).toContain('europe-west1-c');
    expect(inserts()).toHaveLength(0);
  });

  describe('find', () => {
    it('finds the attempt in whichever zone it is, and absent when every zone says 404', async () => {
      const request = vmRequest();
      expect(await launcher.find(request.job)).toEqual({ kind: 'absent' });
      compute.stockout = (zone) => zone !== 'europe-west1-d';
      const { execution } = await launcher.launch(request);
      expect(await launcher.find(request.job)).toEqual({ kind: 'found', execution });
      expect(execution).toMatch(/^zones\/europe-west1-d\//);
      // Another attempt of the same job is another VM.
      expect(await launcher.find({ ...request.job, attempt: 2 })).toEqual({ kind: 'absent' });
    });

    it.each([
      [
        403,
        'forbidden',
        "Required 'compute.instances.get' permission",
        'compute.instances.get on instances in europe-west1-c',
      ],
      // 500, not 503: the library retries a GET that answers 503 (UNAVAILABLE) by itself.
      [500, 'backendError', 'Backend Error', 'the next look asks again'],
    ])('is unknown, saying what to do, when a zone answers %i', async (status, reason, message, hint) => {
      compute.failNext(
        1,
        computeError(status, reason, message),
        (r) => r.method === 'GET' && r.path.includes('europe-west1-c'),
      );
      const found = await launcher.find(vmRequest().job);
      expect(found.kind).toBe('unknown');
      expect(found).toMatchObject({ reason: expect.stringContaining(message) });
      expect(found).toMatchObject({ reason: expect.stringContaining(hint) });
    });
  });
});

/**
 * A proxy to TARGET that loses the answers to the requests DROP picks: it forwards them, waits for
 * the answer (so the double did what was asked), then resets the client's connection.
 */
async function startLossyProxy(target: string, drop: (req: http.IncomingMessage) => boolean) {
  const server = http.createServer((req, res) => {
    const forward = http.request(
      `${target}${req.url ?? '/'}`,
      { method: req.method, headers: req.headers },
      (answer) => {
        if (drop(req)) {
          answer.resume();
          answer.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(forward);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

describe('ComputeEngineLauncher when an insert loses its answer', () => {
  let compute: FakeCompute;
  let proxy: Awaited<ReturnType<typeof startLossyProxy>>;
  let dropInserts = 0;
  beforeAll(async () => {
    compute = await startFakeCompute();
    proxy = await startLossyProxy(compute.endpoint, (req) => {
      const path = new URL(req.url ?? '/', 'http://proxy').pathname;
      if (req.method !== 'POST' || !path.endsWith('/instances') || dropInserts === 0) return false;
      dropInserts -= 1;
      return true;
    });
  });
  afterAll(async () => {
    await proxy.close();
    await compute.close();
  });

  it('is ambiguous when the connection resets after the insert was made, and a redo adopts the VM (409)', async () => {
    const launcher = new ComputeEngineLauncher(testComputeSettings(proxy.endpoint, auth));
    const request = vmRequest();
    dropInserts = 1;
    const err = await launchError(launcher.launch(request));
    expect(err).toMatchObject({ retryable: true, ambiguous: true, capacity: false });
    expect(err.message).toContain('may have reached Compute Engine');
    const found = await launcher.find(request.job);
    expect(found).toEqual({ kind: 'found', execution: expect.stringMatching(/^zones\/europe-west1-b\//) });
    // Safe to make again: the same name in the same zone answers 409, which is adopted.
    expect(await launcher.launch(request)).toEqual({
      execution: (found as { execution: string }).execution,
      spot: false,
    });
  });

  it('is ambiguous on a 5xx, and when the insert times out', async () => {
    const launcher = new ComputeEngineLauncher(
      testComputeSettings(compute.endpoint, auth, { insertTimeoutMs: 200 }),
    );
    compute.failNext(1, computeError(502, 'badGateway', 'Bad Gateway'));
    expect(await launchError(launcher.launch(vmRequest()))).toMatchObject({
      ambiguous: true,
      retryable: true,
    });

    const silent = http.createServer(() => undefined); // takes the request, never answers
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const slow = new ComputeEngineLauncher(testComputeSettings(endpoint, auth, { insertTimeoutMs: 200 }));
      const err = await launchError(slow.launch(vmRequest()));
      expect(err).toMatchObject({ ambiguous: true, retryable: true });
    } finally {
      silent.closeAllConnections();
      silent.close();
      await once(silent, 'close');
    }
  });

  it('is not ambiguous when the connection was refused: nothing was sent', async () => {
    const closed = http.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const endpoint = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    closed.close();
    await once(closed, 'close');
    const launcher = new ComputeEngineLauncher(testComputeSettings(endpoint, auth));
    const err = await launchError(launcher.launch(vmRequest()));
    expect(err).toMatchObject({ ambiguous: false, retryable: true });
  });
});
