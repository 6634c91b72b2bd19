// What the integration tests build alike: the Cloud Run and Compute Engine launchers (the real
// clients, REST, pointed at a loopback double, project acme in europe-west1, with the caller's
// credentials), launch requests (alone and as a batch), and a cloud dispatcher's environment.
import type { AuthClient } from 'google-auth-library';
import {
  batchIdFor,
  batchManifestName,
  jobIdFor,
  newJob,
  transition,
  workerEnvironment,
  type BatchLaunchRequest,
  type JobTemplate,
  type LaunchRequest,
  type Target,
} from '@pipeline/core';
import {
  executionsClient,
  instancesClient,
  jobsClient,
  tasksClient,
  zoneOperationsClient,
} from '../../src/gcp/clients.ts';
import { CloudRunJobLauncher, type CloudRunJobLauncherSettings } from '../../src/gcp/run-launcher.ts';
import type { ComputeEngineLauncherSettings } from '../../src/gcp/compute-launcher.ts';

/** The launcher of project acme's pipeline-worker job at `endpoint`; `changes` override its settings. */
export function testRunLauncher(
  endpoint: string,
  authClient: AuthClient,
  changes: Partial<CloudRunJobLauncherSettings> = {},
): CloudRunJobLauncher {
  const clients = { endpoint, authClient };
  return new CloudRunJobLauncher({
    project: 'acme',
    region: 'europe-west1',
    job: 'pipeline-worker',
    client: () => jobsClient(clients),
    executions: () => executionsClient(clients),
    tasks: () => tasksClient(clients),
    ...changes,
  });
}

/** Settings of a Compute launcher in europe-west1-b (ADC without `authClient`); `changes` override any of them. */
export function testComputeSettings(
  endpoint: string,
  authClient: AuthClient | undefined,
  changes: Partial<ComputeEngineLauncherSettings> = {},
): ComputeEngineLauncherSettings {
  const clients = authClient === undefined ? { endpoint } : { endpoint, authClient };
  return {
    project: 'acme',
    zone: 'europe-west1-b',
    image: 'europe-west1-docker.pkg.dev/acme/pipeline/worker:1',
    agentImage: 'europe-west1-docker.pkg.dev/acme/pipeline/agent:1',
    serviceAccount: 'vm-worker@acme.iam.gserviceaccount.com',
    defaultMachineType: 'e2-standard-4',
    startupScript: '#!/bin/sh\n',
    instances: () => instancesClient(clients),
    operations: () => zoneOperationsClient(clients),
    ...changes,
  };
}

let objects = 0;

/**
 * The launch of a job's first attempt on `target`: for a new object data/N.csv of acme-input (or
 * `objectName`), with the worker environment of `template` (by default the logreg task, no args).
 */
export function testLaunchRequest(
  target: Target,
  template: Partial<JobTemplate> = {},
  objectName = `data/${++objects}.csv`,
): LaunchRequest {
  const object = { bucket: 'acme-input', name: objectName, generation: '1', size: 10, metadata: {} };
  const full: JobTemplate = { task: 'logreg', args: [], env: {}, spot: false, ...template };
  const at = '2024-05-01T12:00:00.000Z';
  const received = newJob(
    jobIdFor(object.bucket, object.name, object.generation),
    { kind: 'object', object },
    at,
  );
  const outputUri = `gs://acme-output/${object.name}/`;
  const logsUri = `${outputUri}logs/attempt-1.log`;
  const queued = transition(received, 'QUEUED', at, { target, template: full, outputUri, logsUri });
  const job = transition(queued, 'LAUNCHED', at, {
    attempts: [{ attempt: 1, target, logsUri, launchedAt: at }],
  });
  const env = workerEnvironment(job, full, { inputUri: `gs://${object.bucket}/${object.name}`, outputUri });
  return { job, target, env, args: full.args, logsUri };
}

/**
 * The launch of a batch of `size` new jobs on Cloud Run (`template` theirs), each job's current
 * attempt recorded as the batch's task of its index, as the launch queue records it.
 */
export function testBatchLaunchRequest(
  size: number,
  template: Partial<JobTemplate> = {},
): BatchLaunchRequest {
  const launched = Array.from({ length: size }, () => testLaunchRequest('cloud-run-job', template).job);
  const batchId = batchIdFor(launched.map((job) => ({ jobId: job.id, attempt: job.attempt })));
  const jobs = launched.map((job, index) => ({
    ...job,
    attempts: (job.attempts ?? []).map((a) =>
      a.attempt === job.attempt ? { ...a, batch: { id: batchId, index, size } } : a,
    ),
  }));
  return {
    batchId,
    manifestUri: `gs://acme-output/${batchManifestName(batchId)}`,
    jobs,
    args: template.args ?? [],
    ...(template.timeoutSeconds === undefined ? {} : { timeoutSeconds: template.timeoutSeconds }),
  };
}

/**
 * The environment of a cloud dispatcher in project test-project, with what config.ts requires and
 * PUSH_AUTH off (push-auth.test.ts covers the tokens); `changes` add or override variables.
 */
export function testCloudEnv(changes: Record<string, string> = {}): Record<string, string> {
  return {
    GOOGLE_CLOUD_PROJECT: 'test-project',
    REGION: 'us-central1',
    ZONE: 'us-central1-a',
    OUTPUT_BUCKET: 'acme-pipeline-output',
    WORKER_JOB: 'pipeline-worker',
    WORKER_IMAGE: 'us-central1-docker.pkg.dev/test-project/pipeline/worker:1',
    AGENT_IMAGE: 'us-central1-docker.pkg.dev/test-project/pipeline/agent:1',
    WORKER_SERVICE_ACCOUNT: 'worker@test-project.iam.gserviceaccount.com',
    COMPLETIONS_TOPIC: 'completions',
    PUSH_AUTH: 'off',
    ...changes,
  };
}
