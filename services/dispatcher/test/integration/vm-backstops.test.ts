// The backstops that keep a VM from outliving its work, checked on every kind of VM the launcher
// makes; and the start-up script, which must pass shellcheck and read no task data.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import { jobIdFor, newJob, transition, workerEnvironment, type JobTemplate } from '@pipeline/core';
import { instancesClient, zoneOperationsClient } from '../../src/gcp/clients.ts';
import { ComputeEngineLauncher, VM_STARTUP_SCRIPT_PATH } from '../../src/gcp/compute-launcher.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';

const VARIANTS: { name: string; template: Partial<JobTemplate> }[] = [
  { name: 'standard, default machine and timeout', template: {} },
  { name: 'spot', template: { spot: true, timeoutSeconds: 7200 } },
  {
    name: 'GPU',
    template: {
      machineType: 'g2-standard-8',
      accelerator: { type: 'nvidia-l4', count: 1 },
      timeoutSeconds: 600,
    },
  },
  {
    name: 'own image, long',
    template: { image: 'docker.io/library/busybox:1', task: undefined, timeoutSeconds: 7 * 24 * 3600 },
  },
];

describe('every VM the launcher makes', () => {
  let compute: FakeCompute;
  let launcher: ComputeEngineLauncher;
  beforeAll(async () => {
    compute = await startFakeCompute();
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
    const clients = { endpoint: compute.endpoint, authClient: auth };
    launcher = new ComputeEngineLauncher({
      project: 'acme',
      zone: 'us-central1-a',
      image: 'us-central1-docker.pkg.dev/acme/pipeline/worker:1',
      agentImage: 'us-central1-docker.pkg.dev/acme/pipeline/agent:1',
      serviceAccount: 'vm@acme.iam.gserviceaccount.com',
      defaultMachineType: 'e2-standard-2',
      completionsTopic: 'completions',
      instances: () => instancesClient(clients),
      operations: () => zoneOperationsClient(clients),
    });
  });
  afterAll(() => compute.close());

  it.each(VARIANTS)(
    '$name: has maxRunDuration and instanceTerminationAction DELETE',
    async ({ name, template }) => {
      const object = { bucket: 'in', name: `${name}.csv`, generation: '1', size: 1, metadata: {} };
      const full: JobTemplate = { task: 'logreg', args: [], env: {}, spot: false, ...template };
      const at = new Date().toISOString();
      const job = transition(
        newJob(jobIdFor('in', object.name, '1'), { kind: 'object', object }, at),
        'QUEUED',
        at,
        { target: 'vm', template: full },
      );
      const env = workerEnvironment(job, full, {
        inputUri: `gs://in/${object.name}`,
        outputUri: `gs://out/${object.name}/`,
      });
      await launcher.launch({
        job,
        target: 'vm',
        env,
        args: [],
        logsUri: `gs://out/${object.name}/logs/attempt-1.log`,
      });
      const insert = compute.requests
        .filter((r) => r.method === 'POST' && r.path.endsWith('/instances'))
        .at(-1)!;
      const scheduling = (insert.body as { scheduling: Record<string, unknown> }).scheduling;
      expect(scheduling.instanceTerminationAction).toBe('DELETE');
      expect(Number((scheduling.maxRunDuration as { seconds: string }).seconds)).toBeGreaterThan(
        full.timeoutSeconds ?? 0,
      );
      expect(scheduling.automaticRestart).toBe(false);
    },
  );
});

describe('the VM start-up script', () => {
  const script = fs.readFileSync(VM_STARTUP_SCRIPT_PATH, 'utf8');

  it('reads no task data: only the agent image and the GPU flag from metadata', () => {
    const read = [...script.matchAll(/instance\/attributes\/([\w-]+)/g)].map((m) => m[1]);
    expect(new Set(read)).toEqual(new Set(['pipeline-agent-image', 'pipeline-gpu']));
    expect(script).not.toMatch(/\$\{?(INPUT_URI|OUTPUT_URI|JOB_ID|TASK)\b/);
  });

  const shellcheck = spawnSync('shellcheck', ['--version']);
  const installed = shellcheck.status === 0;
  if (!installed && process.env.CI === 'true')
    throw new Error('CI needs shellcheck (apt-get install shellcheck)');
  it.skipIf(!installed)('passes shellcheck', () => {
    const result = spawnSync('shellcheck', ['-s', 'bash', VM_STARTUP_SCRIPT_PATH], { encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
