import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config.ts';

const VALID = {
  GOOGLE_CLOUD_PROJECT: 'acme-prod',
  REGION: 'us-central1',
  ZONE: 'us-central1-a',
  OUTPUT_BUCKET: 'acme-pipeline-output',
  WORKER_JOB: 'pipeline-worker',
  WORKER_IMAGE: 'us-central1-docker.pkg.dev/acme-prod/pipeline/worker:1',
  AGENT_IMAGE: 'us-central1-docker.pkg.dev/acme-prod/pipeline/agent:1',
  WORKER_SERVICE_ACCOUNT: 'worker@acme-prod.iam.gserviceaccount.com',
  COMPLETIONS_TOPIC: 'pipeline-completions',
  PUSH_AUDIENCE: 'https://dispatcher-abc-uc.a.run.app',
  PUSH_SERVICE_ACCOUNT: 'push@acme-prod.iam.gserviceaccount.com',
};

describe('parseConfig', () => {
  it('reads a complete environment, with defaults for the rest', () => {
    const config = parseConfig({
      ...VALID,
      JOBS_CALLERS: 'ci@acme-prod.iam.gserviceaccount.com, ops@acme.com',
    });
    expect(config).toMatchObject({
      project: 'acme-prod',
      zone: 'us-central1-a',
      workerImage: 'us-central1-docker.pkg.dev/acme-prod/pipeline/worker:1',
      agentImage: 'us-central1-docker.pkg.dev/acme-prod/pipeline/agent:1',
      port: 8080,
      leaseMs: 600_000,
      ledgerCollection: 'jobs',
      vm: {
        machineType: 'e2-standard-2',
        imageFamily: 'cos-stable',
        imageProject: 'cos-cloud',
        network: 'default',
        externalIp: false,
        spot: false,
        timeoutMarginSeconds: 600,
        label: 'true',
      },
      pushAuth: {
        enabled: true,
        audience: 'https://dispatcher-abc-uc.a.run.app',
        pushServiceAccount: 'push@acme-prod.iam.gserviceaccount.com',
        jobCallers: ['ci@acme-prod.iam.gserviceaccount.com', 'ops@acme.com'],
        acceptGcloudTokens: false,
      },
    });
    expect(config.pipelineConfig).toMatch(/pipeline\.config\.json$/);
    expect(config.runApiEndpoint).toBeUndefined();
    expect(config.deadLetters).toBeUndefined();
    expect(config.jobEventsTopic).toBeUndefined();
  });

  it('reads what the Cloud Run job is defined with, as terraform writes it; absent, there is none', () => {
    expect(parseConfig(VALID)).not.toHaveProperty('cloudRunJob');
    expect(parseConfig({ ...VALID, WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: '4Gi' }).cloudRunJob).toEqual({
      cpu: 2,
      memoryBytes: 4 * 1024 ** 3,
    });
    const withL4 = { ...VALID, WORKER_JOB_CPU: '4', WORKER_JOB_MEMORY: '16Gi', WORKER_JOB_GPU: 'nvidia-l4' };
    expect(parseConfig(withL4).cloudRunJob).toEqual({
      cpu: 4,
      memoryBytes: 16 * 1024 ** 3,
      accelerator: { type: 'nvidia-l4', count: 1 },
    });
    const timed = { ...VALID, WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: '4Gi', WORKER_JOB_TIMEOUT: '3600s' };
    expect(parseConfig(timed).cloudRunJob).toEqual({
      cpu: 2,
      memoryBytes: 4 * 1024 ** 3,
      timeoutSeconds: 3600,
    });
  });

  it('takes each edge of Cloud Run’s vCPU and memory table', () => {
    const edges: [string, string][] = [
      ['1', '512Mi'],
      ['1', '4Gi'],
      ['2', '8Gi'],
      ['4', '2Gi'],
      ['6', '24Gi'],
      ['8', '32Gi'],
    ];
    for (const [cpu, memory] of edges) {
      const job = parseConfig({ ...VALID, WORKER_JOB_CPU: cpu, WORKER_JOB_MEMORY: memory }).cloudRunJob;
      expect(job, `${cpu} vCPU, ${memory}`).toMatchObject({ cpu: Number(cpu) });
    }
  });

  it('reads JOB_EVENTS_TOPIC, where job state changes are published', () => {
    expect(parseConfig({ ...VALID, JOB_EVENTS_TOPIC: 'pipeline-job-events' }).jobEventsTopic).toBe(
      'pipeline-job-events',
    );
  });

  it.each([
    'europe-west1-docker.pkg.dev/acme-prod/pipeline/agent:20260101-120000-abc1234',
    '127.0.0.1:5000/pipeline/agent:box',
    `gcr.io/acme-prod/agent@sha256:${'ab'.repeat(32)}`,
    'agent',
  ])('takes AGENT_IMAGE %s, the VM agent apart from the worker image', (image) => {
    const config = parseConfig({ ...VALID, AGENT_IMAGE: image });
    expect([config.agentImage, config.workerImage]).toEqual([image, VALID.WORKER_IMAGE]);
  });

  it("accepts people's own gcloud tokens on the jobs API only when JOBS_ACCEPT_GCLOUD_TOKENS says so", () => {
    for (const [value, accepted] of [
      ['true', true],
      ['on', true],
      ['false', false],
      ['', false],
    ] as const) {
      const config = parseConfig({ ...VALID, JOBS_ACCEPT_GCLOUD_TOKENS: value });
      expect(config.pushAuth).toMatchObject({ enabled: true, acceptGcloudTokens: accepted });
    }
  });

  it('reads the dead-letter subscription with the subscriptions it serves and their topics', () => {
    const config = parseConfig({
      ...VALID,
      DEAD_LETTER_SUBSCRIPTION: 'pipeline-dead-letter',
      UPLOADS_TOPIC: 'pipeline-uploads',
      UPLOADS_SUBSCRIPTION: 'pipeline-uploads-push',
      COMPLETIONS_SUBSCRIPTION: 'pipeline-completions-push',
    });
    expect(config.deadLetters).toEqual({
      subscription: 'pipeline-dead-letter',
      uploads: { subscription: 'pipeline-uploads-push', topic: 'pipeline-uploads' },
      completions: { subscription: 'pipeline-completions-push', topic: 'pipeline-completions' },
    });
  });

  it("bounds launches below Cloud Run's 1,000 executions by default, and reads the limits set", () => {
    expect(parseConfig(VALID).capacity).toEqual({ runExecutions: 900, runJobsPerMinute: 60 });
    const config = parseConfig({
      ...VALID,
      RUN_MAX_EXECUTIONS: '10',
      RUN_JOBS_PER_MINUTE: '180',
      VM_MAX_VCPUS: '24',
    });
    expect(config.capacity).toEqual({ runExecutions: 10, runJobsPerMinute: 180, vmCpus: 24 });
  });

  it('takes endpoint overrides and PUSH_AUTH=off off Cloud Run', () => {
    const config = parseConfig({
      ...VALID,
      PUSH_AUTH: 'off',
      PUSH_AUDIENCE: '',
      RUN_API_ENDPOINT: 'http://127.0.0.1:9001/',
      COMPUTE_API_ENDPOINT: 'http://127.0.0.1:9002',
      VM_SPOT: 'true',
      PORT: '0',
    });
    expect(config).toMatchObject({
      pushAuth: { enabled: false },
      runApiEndpoint: 'http://127.0.0.1:9001',
      computeApiEndpoint: 'http://127.0.0.1:9002',
      vm: { spot: true },
      port: 0,
    });
  });

  it.each([
    [{ GOOGLE_CLOUD_PROJECT: '' }, 'GOOGLE_CLOUD_PROJECT', 'GOOGLE_CLOUD_PROJECT: is required'],
    [
      { GOOGLE_CLOUD_PROJECT: 'Acme_Prod' },
      'GOOGLE_CLOUD_PROJECT',
      'GOOGLE_CLOUD_PROJECT: "Acme_Prod" is not a project id',
    ],
    [{ REGION: 'mars' }, 'REGION', 'REGION: "mars" is not a region like us-central1'],
    [{ ZONE: 'europe-west1-b' }, 'ZONE', 'ZONE: europe-west1-b is not in REGION us-central1'],
    [{ OUTPUT_BUCKET: 'gs://out' }, 'OUTPUT_BUCKET', 'OUTPUT_BUCKET: "gs://out" is not a bucket name'],
    [{ WORKER_JOB: 'Worker Job' }, 'WORKER_JOB', 'WORKER_JOB: "Worker Job" is not a Cloud Run job name'],
    [{ WORKER_IMAGE: undefined }, 'WORKER_IMAGE', 'WORKER_IMAGE: is required'],
    [{ AGENT_IMAGE: undefined }, 'AGENT_IMAGE', 'AGENT_IMAGE: is required'],
    ...['--privileged', 'Agent:1', 'host/agent:1 --rm', 'agent:1;id'].map(
      (image): [object, string, string] => [
        { AGENT_IMAGE: image },
        'AGENT_IMAGE',
        `AGENT_IMAGE: ${JSON.stringify(image)} is not an image like REGION-docker.pkg.dev/PROJECT/REPO/agent:TAG`,
      ],
    ),
    [
      { WORKER_SERVICE_ACCOUNT: 'worker' },
      'WORKER_SERVICE_ACCOUNT',
      'WORKER_SERVICE_ACCOUNT: "worker" is not a service account email',
    ],
    [{ COMPLETIONS_TOPIC: undefined }, 'COMPLETIONS_TOPIC', 'COMPLETIONS_TOPIC: is required'],
    [{ JOB_EVENTS_TOPIC: 'x' }, 'JOB_EVENTS_TOPIC', 'JOB_EVENTS_TOPIC: "x" is not a topic name'],
    [{ PUSH_AUDIENCE: undefined }, 'PUSH_AUDIENCE', 'PUSH_AUDIENCE: is required'],
    [{ PUSH_SERVICE_ACCOUNT: undefined }, 'PUSH_SERVICE_ACCOUNT', 'PUSH_SERVICE_ACCOUNT: is required'],
    [{ PUSH_AUTH: 'maybe' }, 'PUSH_AUTH', 'PUSH_AUTH: "maybe" is not true or false'],
    [
      { PUSH_AUTH: 'off', K_SERVICE: 'dispatcher' },
      'PUSH_AUTH',
      'PUSH_AUTH: off is for emulators and tests, and this runs on Cloud Run (K_SERVICE is set)',
    ],
    [{ JOBS_CALLERS: 'ci@x.com,nobody' }, 'JOBS_CALLERS', 'JOBS_CALLERS: "nobody" is not an email'],
    [
      { JOBS_ACCEPT_GCLOUD_TOKENS: 'sometimes' },
      'JOBS_ACCEPT_GCLOUD_TOKENS',
      'JOBS_ACCEPT_GCLOUD_TOKENS: "sometimes" is not true or false',
    ],
    [{ PORT: '80000' }, 'PORT', 'PORT: "80000" is not a port number'],
    [{ VM_EXTERNAL_IP: 'sometimes' }, 'VM_EXTERNAL_IP', 'VM_EXTERNAL_IP: "sometimes" is not true or false'],
    [{ VM_LABEL: 'Staging' }, 'VM_LABEL', 'VM_LABEL: "Staging" is not a label value (a-z, 0-9, - and _)'],
    [{ VM_TIMEOUT_MARGIN: 'soon' }, 'VM_TIMEOUT_MARGIN', /^VM_TIMEOUT_MARGIN: /],
    [{ CLAIM_LEASE: '-5m' }, 'CLAIM_LEASE', /^CLAIM_LEASE: /],
    [
      { RUN_MAX_EXECUTIONS: '1001' },
      'RUN_MAX_EXECUTIONS',
      'RUN_MAX_EXECUTIONS: "1001" is not a whole number from 1 to 1000',
    ],
    [
      { RUN_JOBS_PER_MINUTE: '0' },
      'RUN_JOBS_PER_MINUTE',
      'RUN_JOBS_PER_MINUTE: "0" is not a whole number from 1 to 100000',
    ],
    [{ VM_MAX_VCPUS: '2.5' }, 'VM_MAX_VCPUS', 'VM_MAX_VCPUS: "2.5" is not a whole number from 1 to 1000000'],
    [
      { RUN_API_ENDPOINT: '127.0.0.1:9000' },
      'RUN_API_ENDPOINT',
      'RUN_API_ENDPOINT: "127.0.0.1:9000" is not like http://host:port',
    ],
    [
      { VM_MACHINE_TYPE: 'big' },
      'VM_MACHINE_TYPE',
      'VM_MACHINE_TYPE: "big" is not a machine type like e2-standard-4',
    ],
    [{ WORKER_JOB_CPU: '3', WORKER_JOB_MEMORY: '4Gi' }, 'WORKER_JOB_CPU', /is not 1, 2, 4, 6 or 8/],
    [{ WORKER_JOB_CPU: '2' }, 'WORKER_JOB_MEMORY', 'WORKER_JOB_MEMORY: is required with WORKER_JOB_CPU'],
    [{ WORKER_JOB_MEMORY: '4Gi' }, 'WORKER_JOB_CPU', 'WORKER_JOB_CPU: is required with WORKER_JOB_MEMORY'],
    [
      { WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: 'lots' },
      'WORKER_JOB_MEMORY',
      /"lots" is not a size like "4Gi"/,
    ],
    [
      { WORKER_JOB_CPU: '8', WORKER_JOB_MEMORY: '64Gi' },
      'WORKER_JOB_MEMORY',
      /64Gi is not from 512Mi to 32Gi/,
    ],
    // Cloud Run's vCPU and memory table (https://cloud.google.com/run/docs/configuring/jobs/cpu).
    [
      { WORKER_JOB_CPU: '1', WORKER_JOB_MEMORY: '8Gi' },
      'WORKER_JOB_MEMORY',
      'WORKER_JOB_MEMORY: 8Gi is not from 512Mi to 4Gi, what Cloud Run allows with 1 vCPU (WORKER_JOB_CPU)',
    ],
    [
      { WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: '9Gi' },
      'WORKER_JOB_MEMORY',
      /9Gi is not from 512Mi to 8Gi, what Cloud Run allows with 2 vCPU/,
    ],
    [{ WORKER_JOB_CPU: '4', WORKER_JOB_MEMORY: '1Gi' }, 'WORKER_JOB_MEMORY', /1Gi is not from 2Gi to 16Gi/],
    [{ WORKER_JOB_CPU: '6', WORKER_JOB_MEMORY: '25Gi' }, 'WORKER_JOB_MEMORY', /25Gi is not from 4Gi to 24Gi/],
    [{ WORKER_JOB_CPU: '8', WORKER_JOB_MEMORY: '2Gi' }, 'WORKER_JOB_MEMORY', /2Gi is not from 4Gi to 32Gi/],
    // "For L4 GPUs, you must use a minimum of 4 CPU and 16 GiB" (https://cloud.google.com/run/docs/configuring/jobs/gpu).
    [
      { WORKER_JOB_CPU: '4', WORKER_JOB_MEMORY: '8Gi', WORKER_JOB_GPU: 'nvidia-l4' },
      'WORKER_JOB_GPU',
      'WORKER_JOB_GPU: nvidia-l4 needs at least 4 vCPU and 16Gi (WORKER_JOB_CPU is 4, WORKER_JOB_MEMORY 8Gi)',
    ],
    [
      { WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: '8Gi', WORKER_JOB_GPU: 'nvidia-l4' },
      'WORKER_JOB_GPU',
      /nvidia-l4 needs at least 4 vCPU and 16Gi/,
    ],
    [{ WORKER_JOB_GPU: 'nvidia-l4' }, 'WORKER_JOB_GPU', /needs WORKER_JOB_CPU and WORKER_JOB_MEMORY/],
    [{ WORKER_JOB_TIMEOUT: '3600s' }, 'WORKER_JOB_TIMEOUT', /needs WORKER_JOB_CPU and WORKER_JOB_MEMORY/],
    [
      { WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: '4Gi', WORKER_JOB_TIMEOUT: 'soon' },
      'WORKER_JOB_TIMEOUT',
      /"soon" is not a duration like "3600s"/,
    ],
    [
      { WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: '4Gi', WORKER_JOB_TIMEOUT: '0s' },
      'WORKER_JOB_TIMEOUT',
      /0s is not at least 1s/,
    ],
    [
      { WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: '4Gi', WORKER_JOB_TIMEOUT: '169h' },
      'WORKER_JOB_TIMEOUT',
      /169h is beyond Cloud Run's 7d for a task/,
    ],
    [
      {
        WORKER_JOB_CPU: '4',
        WORKER_JOB_MEMORY: '16Gi',
        WORKER_JOB_GPU: 'nvidia-l4',
        WORKER_JOB_TIMEOUT: '7200s',
      },
      'WORKER_JOB_TIMEOUT',
      /7200s is beyond Cloud Run's 1h for a task with a GPU/,
    ],
    [
      { WORKER_JOB_CPU: '4', WORKER_JOB_MEMORY: '16Gi', WORKER_JOB_GPU: 'nvidia-a100' },
      'WORKER_JOB_GPU',
      /"nvidia-a100" is not nvidia-l4/,
    ],
    ...deadLetterCases(),
  ])('refuses %j, naming %s', (changes, variable, message) => {
    const env = { ...VALID, ...changes };
    let error: unknown;
    try {
      parseConfig(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    if (typeof message === 'string') expect((error as Error).message).toBe(message);
    else expect((error as Error).message).toMatch(message);
  });
});

/** Wrong dead-letter settings, on top of a complete set of them. */
function deadLetterCases(): [Record<string, string | undefined>, string, string][] {
  const complete = {
    DEAD_LETTER_SUBSCRIPTION: 'pipeline-dead-letter',
    UPLOADS_TOPIC: 'pipeline-uploads',
    UPLOADS_SUBSCRIPTION: 'pipeline-uploads-push',
    COMPLETIONS_SUBSCRIPTION: 'pipeline-completions-push',
  };
  return [
    [
      { ...complete, UPLOADS_TOPIC: undefined },
      'UPLOADS_TOPIC',
      'UPLOADS_TOPIC: is required with DEAD_LETTER_SUBSCRIPTION',
    ],
    [
      { ...complete, UPLOADS_SUBSCRIPTION: '' },
      'UPLOADS_SUBSCRIPTION',
      'UPLOADS_SUBSCRIPTION: is required with DEAD_LETTER_SUBSCRIPTION',
    ],
    [
      { ...complete, COMPLETIONS_SUBSCRIPTION: undefined },
      'COMPLETIONS_SUBSCRIPTION',
      'COMPLETIONS_SUBSCRIPTION: is required with DEAD_LETTER_SUBSCRIPTION',
    ],
    [
      { ...complete, DEAD_LETTER_SUBSCRIPTION: 'projects/acme-prod/subscriptions/dl' },
      'DEAD_LETTER_SUBSCRIPTION',
      'DEAD_LETTER_SUBSCRIPTION: "projects/acme-prod/subscriptions/dl" is not a subscription id',
    ],
    [{ ...complete, UPLOADS_TOPIC: 'up' }, 'UPLOADS_TOPIC', 'UPLOADS_TOPIC: "up" is not a topic name'],
    [
      { ...complete, COMPLETIONS_SUBSCRIPTION: 'pipeline-uploads-push' },
      'COMPLETIONS_SUBSCRIPTION',
      'COMPLETIONS_SUBSCRIPTION: pipeline-uploads-push is UPLOADS_SUBSCRIPTION too',
    ],
    [
      { ...complete, DEAD_LETTER_SUBSCRIPTION: 'pipeline-completions-push' },
      'DEAD_LETTER_SUBSCRIPTION',
      'DEAD_LETTER_SUBSCRIPTION: pipeline-completions-push is a push subscription it dead-letters for',
    ],
  ];
}

// VM_ZONES, the zones a VM is tried in.
describe('VM_ZONES', () => {
  it.each([
    [undefined, ['us-central1-a']],
    ['', ['us-central1-a']],
    ['us-central1-b', ['us-central1-b']],
    ['us-central1-a, us-central1-b,us-central1-f', ['us-central1-a', 'us-central1-b', 'us-central1-f']],
  ])('%j is tried as %j', (value, zones) => {
    const env = value === undefined ? VALID : { ...VALID, VM_ZONES: value };
    expect(parseConfig(env).vm.zones).toEqual(zones);
  });

  it.each([
    ['europe-west1-b', 'VM_ZONES: europe-west1-b is not in REGION us-central1'],
    ['us-central1', 'VM_ZONES: "us-central1" is not a zone like us-central1-a'],
    ['us-central1-a,,us-central1-b', 'VM_ZONES: "" is not a zone like us-central1-a'],
    ['us-central1-a,us-central1-a', 'VM_ZONES: us-central1-a,us-central1-a names a zone twice'],
  ])('refuses %j', (value, message) => {
    expect(() => parseConfig({ ...VALID, VM_ZONES: value })).toThrow(ConfigError);
    expect(() => parseConfig({ ...VALID, VM_ZONES: value })).toThrow(message);
  });
});
