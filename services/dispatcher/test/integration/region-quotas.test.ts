// The region quota reader with the real @google-cloud/compute regions client (REST) against the
// loopback double: what regions.get answers becomes the queue's VM limits; reads are kept for
// maxAgeMs and made again on refresh (after a QUOTA_EXCEEDED); a failed read is 'unknown'.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import { jobIdFor, LaunchError, newJob, type JobTemplate, type LaunchRequest } from '@pipeline/core';
import { closeGoogleClients } from '../../src/gcp/clients.ts';
import { ComputeEngineLauncher } from '../../src/gcp/compute-launcher.ts';
import { closeRegionsClients, regionsClient, RegionQuotaReader } from '../../src/gcp/region-quotas.ts';
import { testComputeSettings } from './test-launchers.ts';
import { computeError, startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';

const auth = new OAuth2Client();
auth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 24 * 3600 * 1000 });
afterAll(() => Promise.all([closeGoogleClients(), closeRegionsClients()]));

let objects = 0;
function vmRequest(template: Partial<JobTemplate>): LaunchRequest {
  const name = `quota/${++objects}.csv`;
  const object = { bucket: 'acme-input', name, generation: '1', size: 10, metadata: {} };
  const full: JobTemplate = { task: 'logreg', args: [], env: {}, spot: false, ...template };
  const job = {
    ...newJob(jobIdFor('acme-input', name, '1'), { kind: 'object', object }, '2024-05-01T12:00:00.000Z'),
    state: 'LAUNCHED' as const,
    template: full,
    outputUri: `gs://acme-output/${name}/`,
  };
  return { job, target: 'vm', env: {}, args: [], logsUri: `gs://acme-output/${name}/logs/attempt-1.log` };
}

describe('RegionQuotaReader with @google-cloud/compute', () => {
  let compute: FakeCompute;
  let clock = Date.parse('2024-05-01T12:00:00.000Z');
  const reader = () =>
    new RegionQuotaReader({
      project: 'acme',
      region: 'europe-west1',
      regions: () => regionsClient({ endpoint: compute.endpoint, authClient: auth }),
      now: () => clock,
    });
  const regionGets = () => compute.requests.filter((r) => r.path.endsWith('/regions/europe-west1'));
  beforeAll(async () => {
    compute = await startFakeCompute({ cpuQuota: 24 });
  });
  afterAll(() => compute.close());
  afterEach(() => {
    compute.requests.splice(0);
    compute.instances.clear();
    compute.regionQuotas = undefined;
    compute.onInstanceCreated = undefined;
  });

  it('reads regions.get and makes limits of it, less what others hold', async () => {
    compute.instances.set('someone-else', {
      name: 'someone-else',
      machineType: 'zones/europe-west1-b/machineTypes/e2-standard-8',
    });
    compute.regionQuotas = [{ metric: 'NVIDIA_L4_GPUS', limit: 4, usage: 1 }];
    const read = await reader().limits({ cpus: 0 });

    expect(read).toEqual({
      kind: 'known',
      limits: { vmCpus: 16, vmCpuQuota: 24, gpus: { 'nvidia-l4': { limit: 3, quota: 4 } } },
      readAt: '2024-05-01T12:00:00.000Z',
    });
    const [get] = regionGets();
    expect(get.method).toBe('GET');
    expect(get.path).toBe('/compute/v1/projects/acme/regions/europe-west1');
    expect(get.headers.authorization).toBe('Bearer test-token');
  });

  it('keeps a read for maxAgeMs (5 minutes), and reads again on refresh and after that', async () => {
    const quotas = reader();
    await quotas.quotas();
    clock += 4 * 60_000;
    await quotas.quotas();
    expect(regionGets()).toHaveLength(1);
    await Promise.all([quotas.refresh(), quotas.refresh()]); // one read for both
    expect(regionGets()).toHaveLength(2);
    clock += 5 * 60_000;
    await quotas.quotas();
    expect(regionGets()).toHaveLength(3);
  });

  it('sees a VM that ended: usage falls when the instance is gone', async () => {
    const launcher = new ComputeEngineLauncher(testComputeSettings(compute.endpoint, auth));
    const quotas = reader();
    // The VM ends when its task does (here: when the test says so), deleting its instance.
    let finish = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let ended: Promise<void> | undefined;
    compute.onInstanceCreated = (instance) => {
      ended = finished.then(() => {
        compute.instances.delete(String(instance.name));
      });
    };
    await launcher.launch(vmRequest({ machineType: 'e2-standard-8' }));
    expect(await quotas.refresh()).toMatchObject({ quotas: [{ metric: 'CPUS', limit: 24, usage: 8 }] });
    finish();
    await ended;
    expect(await quotas.refresh()).toMatchObject({ quotas: [{ metric: 'CPUS', limit: 24, usage: 0 }] });
  });

  it('reads again after a QUOTA_EXCEEDED, and then knows the region is full', async () => {
    const launcher = new ComputeEngineLauncher(testComputeSettings(compute.endpoint, auth));
    const quotas = reader();
    expect(await quotas.limits({ cpus: 0 })).toMatchObject({ limits: { vmCpus: 24 } });
    await launcher.launch(vmRequest({ machineType: 'e2-standard-16' }));
    const refused = await launcher
      .launch(vmRequest({ machineType: 'e2-standard-16' }))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LaunchError);
    expect(refused).toMatchObject({ capacity: true });
    await quotas.refresh();
    // Ours: the one VM that runs. The others hold nothing, so all of it is ours to use.
    expect(await quotas.limits({ cpus: 16 })).toMatchObject({ limits: { vmCpus: 24 } });
    expect(await quotas.limits({ cpus: 0 })).toMatchObject({ limits: { vmCpus: 8 } });
  });

  it("answers 'unknown' with the reason when the read fails, and tries again after a while", async () => {
    compute.failNext(
      1,
      computeError(
        403,
        'forbidden',
        "Required 'compute.regions.get' permission for 'projects/acme/regions/europe-west1'",
      ),
    );
    const quotas = reader();
    const read = await quotas.limits({ cpus: 0 });
    expect(read).toMatchObject({
      kind: 'unknown',
      reason: expect.stringContaining("Required 'compute.regions.get' permission"),
    });
    expect(await quotas.quotas()).toMatchObject({ kind: 'unknown' }); // held, not asked again at once
    expect(regionGets()).toHaveLength(1);
    clock += 30_000;
    expect(await quotas.quotas()).toMatchObject({ kind: 'known' });
  });

  it("answers 'unknown' when the API cannot be reached", async () => {
    const unreachable = new RegionQuotaReader({
      project: 'acme',
      region: 'europe-west1',
      regions: () => regionsClient({ endpoint: 'http://127.0.0.1:9', authClient: auth }),
      readTimeoutMs: 300, // the library retries a refused connection until then
    });
    expect(await unreachable.quotas()).toMatchObject({
      kind: 'unknown',
      reason: expect.stringContaining('regions.get'),
    });
  });
});
