// The Cloud Run and Compute Engine launchers with the real @google-cloud/run and @google-cloud/compute
// clients (REST transport) against loopback doubles of the two APIs: what is asserted is the HTTP
// request the real client library sends, and how the launcher reads the real answers and errors.
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import { LaunchError, parseVmTask, type JobTemplate, type Target } from '@pipeline/core';
import { closeGoogleClients } from '../../src/gcp/clients.ts';
import { CloudRunJobLauncher } from '../../src/gcp/run-launcher.ts';
import {
  ComputeEngineLauncher,
  VM_STARTUP_SCRIPT_PATH,
  type ComputeEngineLauncherSettings,
} from '../../src/gcp/compute-launcher.ts';
import {
  testBatchLaunchRequest,
  testComputeSettings,
  testLaunchRequest,
  testRunLauncher,
} from './test-launchers.ts';
import { googleError, startFakeRun, type FakeRun } from '../../../../test/support/fake-run.ts';
import { computeError, startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';

const HOSTILE_NAME = `in/we"ird 'quotes' $(touch /tmp/pwned) \`id\` ; rm -rf / #\nnext line ünïcødé 名前 🚀/${'x'.repeat(1000)}.csv`;
const WORKER_IMAGE = 'europe-west1-docker.pkg.dev/acme/pipeline/worker:1.2.3';
const AGENT_IMAGE = 'europe-west1-docker.pkg.dev/acme/pipeline/agent:1.2.3';

function testAuth(): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 24 * 3600 * 1000 });
  return auth;
}

/** A launch of the logreg task (TARGET_COLUMN=label) for data/q1.csv, or `objectName`, with `template`'s changes. */
function launchRequest(target: Target, template: Partial<JobTemplate> = {}, objectName = 'data/q1.csv') {
  return testLaunchRequest(target, { env: { TARGET_COLUMN: 'label' }, ...template }, objectName);
}

async function launchError(launch: Promise<unknown>): Promise<LaunchError> {
  const err = await launch.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LaunchError);
  return err as LaunchError;
}

const auth = testAuth();
afterAll(() => closeGoogleClients());

describe('CloudRunJobLauncher with @google-cloud/run', () => {
  let run: FakeRun;
  let launcher: CloudRunJobLauncher;
  beforeAll(async () => {
    run = await startFakeRun();
    launcher = testRunLauncher(run.endpoint, auth);
  });
  afterAll(() => run.close());
  afterEach(() => run.requests.splice(0));

  it('runs the job with the task as overrides and returns the execution, without waiting for it', async () => {
    const request = launchRequest('cloud-run-job', { args: ['--max-iter', '50'], timeoutSeconds: 3600 });
    const { execution } = await launcher.launch(request);

    expect(execution).toBe(run.executions.at(-1));
    expect(execution).toMatch(
      /^projects\/acme\/locations\/europe-west1\/jobs\/pipeline-worker\/executions\//,
    );
    expect(run.requests).toHaveLength(1); // no polling of the operation
    const [sent] = run.requests;
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe('/v2/projects/acme/locations/europe-west1/jobs/pipeline-worker:run');
    expect(sent.headers.authorization).toBe('Bearer test-token');
    const sentEnv: Record<string, string> = { ...request.env, LOGS_URI: request.logsUri };
    const env = Object.keys(sentEnv)
      .sort()
      .map((name) => ({ name, value: sentEnv[name] }));
    expect(sent.body).toEqual({
      overrides: {
        containerOverrides: [{ env, args: ['--max-iter', '50'] }],
        taskCount: 1,
        timeout: '3600s',
      },
    });
    expect(sentEnv.LOGS_URI).toBe('gs://acme-output/data/q1.csv/logs/attempt-1.log');
    expect(env.map((e) => e.name)).toEqual([
      'ATTEMPT',
      'INPUT_GENERATION',
      'INPUT_URI',
      'JOB_ID',
      'LOGS_URI',
      'OUTPUT_URI',
      'TARGET_COLUMN',
      'TASK',
    ]);
  });

  it("sends no args and no timeout when the task has none, so the job's own apply", async () => {
    await launcher.launch(launchRequest('cloud-run-job'));
    const body = run.requests[0].body as {
      overrides: Record<string, unknown> & { containerOverrides: object[] };
    };
    expect(body.overrides.timeout).toBeUndefined();
    expect(body.overrides.containerOverrides[0]).not.toHaveProperty('args');
    expect(body.overrides.containerOverrides[0]).not.toHaveProperty('clearArgs');
  });

  it('passes a hostile object name byte-exact in the env override', async () => {
    const request = launchRequest('cloud-run-job', {}, HOSTILE_NAME);
    await launcher.launch(request);
    const body = run.requests[0].body as {
      overrides: { containerOverrides: { env: { name: string; value: string }[] }[] };
    };
    const inputUri = body.overrides.containerOverrides[0].env.find((e) => e.name === 'INPUT_URI')?.value;
    expect(inputUri).toBe(`gs://acme-input/${HOSTILE_NAME}`);
    expect(
      Buffer.from(inputUri!, 'utf8').equals(Buffer.from(`gs://acme-input/${HOSTILE_NAME}`, 'utf8')),
    ).toBe(true);
    expect(Buffer.byteLength(HOSTILE_NAME)).toBeGreaterThan(1000);
  });

  it.each([
    [429, true],
    [503, true],
    [400, false],
    [404, false],
    [403, false],
  ])('maps HTTP %i to a LaunchError with retryable %s', async (status, retryable) => {
    run.failNext(1, googleError(status, `the double says ${status}`));
    const err = await launchError(launcher.launch(launchRequest('cloud-run-job')));
    expect(err.retryable).toBe(retryable);
    expect(err.message).toContain('projects/acme/locations/europe-west1/jobs/pipeline-worker');
    expect(err.message).toContain(`the double says ${status}`);
  });

  it('refuses a template with its own image, which a job execution cannot run, without calling the API', async () => {
    const err = await launchError(
      launcher.launch(launchRequest('cloud-run-job', { image: 'ghcr.io/acme/other:1' })),
    );
    expect(err.retryable).toBe(false);
    expect(run.requests).toHaveLength(0);
  });

  it('runs a batch as one execution of a task per job, whose env is only the batch and its manifest', async () => {
    const batch = testBatchLaunchRequest(3, { args: ['--max-iter', '50'], timeoutSeconds: 3600 });
    const { execution } = await launcher.launchBatch(batch);

    expect(execution).toBe(run.executions.at(-1));
    expect(run.requests).toHaveLength(1);
    const [sent] = run.requests;
    expect(sent.path).toBe('/v2/projects/acme/locations/europe-west1/jobs/pipeline-worker:run');
    expect(sent.body).toEqual({
      overrides: {
        containerOverrides: [
          {
            env: [
              { name: 'BATCH_ID', value: batch.batchId },
              { name: 'BATCH_MANIFEST_URI', value: batch.manifestUri },
            ],
            args: ['--max-iter', '50'],
          },
        ],
        taskCount: 3,
        timeout: '3600s',
      },
    });
    expect(batch.manifestUri).toMatch(/^gs:\/\/acme-output\/_pipeline\/batches\/batch-[0-9a-f]{24}\.json$/);
  });

  it("sends a batch without args or a timeout when it has none, so the job's own apply", async () => {
    await launcher.launchBatch(testBatchLaunchRequest(2));
    const body = run.requests[0].body as {
      overrides: Record<string, unknown> & { containerOverrides: object[] };
    };
    expect(body.overrides.taskCount).toBe(2);
    expect(body.overrides.timeout).toBeUndefined();
    expect(body.overrides.containerOverrides[0]).not.toHaveProperty('args');
  });

  it.each([
    ['a job whose template names its own image', { image: 'ghcr.io/acme/other:1' }, 'cannot run image'],
    ["a timeout over Cloud Run's limit", { timeoutSeconds: 169 * 3600 }, "over Cloud Run's 168 h"],
  ])('refuses a batch with %s, without calling the API', async (_, template, why) => {
    const err = await launchError(launcher.launchBatch(testBatchLaunchRequest(2, template)));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(why);
    expect(run.requests).toHaveLength(0);
  });

  it('maps a refused batch to a LaunchError naming the batch', async () => {
    run.failNext(1, googleError(400, 'the double says 400'));
    const batch = testBatchLaunchRequest(2);
    const err = await launchError(launcher.launchBatch(batch));
    expect(err).toMatchObject({ retryable: false, ambiguous: false });
    expect(err.message).toContain(`batch ${batch.batchId} of 2 jobs`);
  });
});

describe('ComputeEngineLauncher with @google-cloud/compute', () => {
  let compute: FakeCompute;
  let settings: ComputeEngineLauncherSettings;
  let launcher: ComputeEngineLauncher;
  const startupScript = fs.readFileSync(VM_STARTUP_SCRIPT_PATH, 'utf8');
  beforeAll(async () => {
    compute = await startFakeCompute();
    // The real start-up script: the tests read it back from the metadata sent.
    settings = testComputeSettings(compute.endpoint, auth, {
      image: WORKER_IMAGE,
      agentImage: AGENT_IMAGE,
      startupScript,
    });
    launcher = new ComputeEngineLauncher(settings);
  });
  afterAll(() => compute.close());
  afterEach(() => {
    compute.requests.splice(0);
    compute.instances.clear();
    compute.pendingWaits = 0;
  });

  type Sent = {
    name: string;
    metadata: { items: { key: string; value: string }[] };
    [key: string]: unknown;
  };
  const inserted = () => compute.requests[0].body as Sent;
  const item = (body: Sent, key: string) => body.metadata.items.find((i) => i.key === key)?.value;

  it('creates one spot VM with a GPU for the attempt, waits for the insert, and returns the instance', async () => {
    const request = launchRequest('vm', {
      spot: true,
      machineType: 'g2-standard-8',
      accelerator: { type: 'nvidia-l4', count: 1 },
      timeoutSeconds: 3600,
      args: ['--max-iter', '50'],
    });
    const { job } = request;
    const name = `pipeline-${job.id.slice(0, 20)}-a1`;
    const { execution } = await launcher.launch(request);

    expect(execution).toBe(`zones/europe-west1-b/instances/${name}`);
    const [insert, wait] = compute.requests;
    expect(compute.requests).toHaveLength(2);
    expect(insert.method).toBe('POST');
    expect(insert.path).toBe('/compute/v1/projects/acme/zones/europe-west1-b/instances');
    expect(insert.headers.authorization).toBe('Bearer test-token');
    const body = inserted();
    expect(body).toMatchObject({
      name,
      labels: { pipeline: 'true', 'job-id': job.id, attempt: '1' },
      machineType: 'zones/europe-west1-b/machineTypes/g2-standard-8',
      scheduling: {
        provisioningModel: 'SPOT',
        automaticRestart: false,
        onHostMaintenance: 'TERMINATE',
        instanceTerminationAction: 'DELETE',
        maxRunDuration: { seconds: '4200' }, // int64 travels as a string
      },
      disks: [
        {
          boot: true,
          autoDelete: true,
          initializeParams: { sourceImage: 'projects/cos-cloud/global/images/family/cos-stable' },
        },
      ],
      shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
      networkInterfaces: [{}],
      serviceAccounts: [
        {
          email: 'vm-worker@acme.iam.gserviceaccount.com',
          scopes: ['https://www.googleapis.com/auth/cloud-platform'],
        },
      ],
    });
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    expect(body.metadata.items.map((i) => i.key).sort()).toEqual([
      'google-logging-enabled',
      'pipeline-agent-image',
      'pipeline-attempt',
      'pipeline-gpu',
      'pipeline-job-id',
      'pipeline-task',
      'startup-script',
    ]);
    expect(item(body, 'pipeline-job-id')).toBe(job.id);
    expect(item(body, 'pipeline-attempt')).toBe('1');
    // Read as the agent reads it: the one parser of the VM task, in core.
    expect(parseVmTask(item(body, 'pipeline-task'))).toEqual({
      jobId: job.id,
      attempt: 1,
      image: WORKER_IMAGE,
      args: ['--max-iter', '50'],
      env: request.env,
      outputUri: job.outputUri,
      logsUri: request.logsUri,
      timeoutSeconds: 3600,
      gpus: 1,
    });
    // The agent is an image of its own; the worker image is only the task's (a route naming none).
    expect(item(body, 'pipeline-agent-image')).toBe(AGENT_IMAGE);
    expect(item(body, 'google-logging-enabled')).toBe('true');
    expect(item(body, 'startup-script')).toBe(startupScript);

    expect(wait.method).toBe('POST');
    expect(wait.path).toMatch(
      /^\/compute\/v1\/projects\/acme\/zones\/europe-west1-b\/operations\/operation-[^/]+\/wait$/,
    );
    expect(wait.headers.authorization).toBe('Bearer test-token');
  });

  it('names the GPUs in guestAccelerators only for a machine type that does not bring its own', async () => {
    // g2 and a2 are accelerator-optimized: their GPUs come with the type (the test above).
    await launcher.launch(
      launchRequest('vm', { machineType: 'g2-standard-8', accelerator: { type: 'nvidia-l4', count: 1 } }),
    );
    await launcher.launch(
      launchRequest(
        'vm',
        { machineType: 'n1-standard-8', accelerator: { type: 'nvidia-tesla-t4', count: 2 } },
        'data/t4.csv',
      ),
    );
    const [g2, n1] = compute.requests
      .filter((r) => r.method === 'POST' && r.path.endsWith('/instances'))
      .map((r) => r.body as Sent);
    expect(g2).not.toHaveProperty('guestAccelerators');
    expect(n1.guestAccelerators).toEqual([
      { acceleratorType: 'zones/europe-west1-b/acceleratorTypes/nvidia-tesla-t4', acceleratorCount: 2 },
    ]);
  });

  it('makes a standard VM without GPU or external IP by default, and one with an external IP when asked', async () => {
    await launcher.launch(launchRequest('vm'));
    const body = inserted();
    expect(body.scheduling).toEqual({
      provisioningModel: 'STANDARD',
      automaticRestart: false,
      onHostMaintenance: 'MIGRATE',
      instanceTerminationAction: 'DELETE',
      maxRunDuration: { seconds: String(24 * 3600 + 600) },
    });
    expect(body.machineType).toBe('zones/europe-west1-b/machineTypes/e2-standard-4');
    expect(body).not.toHaveProperty('guestAccelerators');
    expect(body.networkInterfaces).toEqual([{}]);
    expect(item(body, 'pipeline-gpu')).toBeUndefined();

    compute.requests.splice(0);
    const exposed = new ComputeEngineLauncher({
      ...settings,
      externalIp: true,
      subnetwork: 'regions/europe-west1/subnetworks/pipeline',
    });
    await exposed.launch(launchRequest('vm', {}, 'data/q2.csv'));
    expect(inserted().networkInterfaces).toEqual([
      {
        subnetwork: 'regions/europe-west1/subnetworks/pipeline',
        accessConfigs: [{ name: 'External NAT', type: 'ONE_TO_ONE_NAT' }],
      },
    ]);
  });

  it('passes a hostile object name byte-exact in the task metadata, never in the start-up script', async () => {
    const request = launchRequest('vm', {}, HOSTILE_NAME);
    await launcher.launch(request);
    const body = inserted();
    const task = JSON.parse(item(body, 'pipeline-task')!) as {
      env: Record<string, string>;
      outputUri: string;
    };
    expect(task.env.INPUT_URI).toBe(`gs://acme-input/${HOSTILE_NAME}`);
    expect(task.outputUri).toBe(`gs://acme-output/${HOSTILE_NAME}/`);
    expect(item(body, 'startup-script')).toBe(startupScript);
    expect(startupScript).not.toContain(request.job.id);
    expect(startupScript).not.toContain('acme');
  });

  it('treats 409 for its own instance name as a success: an earlier delivery created it', async () => {
    const request = launchRequest('vm');
    const first = await launcher.launch(request);
    const second = await launcher.launch(request);
    expect(second).toEqual(first);
    expect(compute.requests.map((r) => r.path.split('/').at(-1))).toEqual(['instances', 'wait', 'instances']);
    compute.requests.splice(0);
    compute.failNext(1, computeError(409, 'alreadyExists', 'already exists'));
    expect(await launcher.launch(launchRequest('vm', {}, 'data/q3.csv'))).toHaveProperty('execution');
  });

  it('waits again while the insert is still running', async () => {
    compute.pendingWaits = 2;
    await launcher.launch(launchRequest('vm'));
    expect(compute.requests.map((r) => r.path.split('/').at(-1))).toEqual([
      'instances',
      'wait',
      'wait',
      'wait',
    ]);
  });

  it.each([
    ['429', true, computeError(429, 'rateLimitExceeded', 'Rate Limit Exceeded')],
    ['503', true, computeError(503, 'backendError', 'Backend Error')],
    ['403 quota', true, computeError(403, 'quotaExceeded', "Quota 'CPUS' exceeded. Limit: 8.0 in region.")],
    ['400', false, computeError(400, 'invalid', "Invalid value for field 'resource.machineType'")],
    ['403 permission', false, computeError(403, 'forbidden', 'Required compute.instances.create permission')],
  ])(
    'maps an insert failing with %s to a LaunchError with retryable %s',
    async (_label, retryable, answer) => {
      compute.failNext(1, answer);
      const err = await launchError(launcher.launch(launchRequest('vm')));
      expect(err.retryable).toBe(retryable);
      expect(err.message).toContain('zones/europe-west1-b/instances/pipeline-');
      expect(err.message).toContain((answer.body as { error: { message: string } }).error.message);
    },
  );

  it.each([
    ['ZONE_RESOURCE_POOL_EXHAUSTED', 503, true],
    ['QUOTA_EXCEEDED', 403, true],
    ['INVALID_FIELD_VALUE', 400, false],
  ])(
    'maps an insert operation ending with %s (HTTP %i) to a LaunchError with retryable %s',
    async (code, http, retryable) => {
      compute.failNextOperation([{ code, message: `the zone says ${code}` }], http);
      const err = await launchError(launcher.launch(launchRequest('vm')));
      expect(err.retryable).toBe(retryable);
      expect(err.message).toContain(`${code}: the zone says ${code}`);
    },
  );
});
