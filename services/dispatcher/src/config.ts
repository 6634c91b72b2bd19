// The dispatcher's settings on Google Cloud, from the environment alone. Pure and table-tested: every
// variable has a validator, and a bad one throws a ConfigError that names it.
import path from 'node:path';
import {
  CloudRunJobDefinitionError,
  CLOUD_RUN_MAX_RUNNING_EXECUTIONS,
  DEFAULT_RUN_EXECUTIONS,
  DEFAULT_RUN_JOBS_PER_MINUTE,
  parseCloudRunJobDefinition,
  parseDuration,
  type CloudRunJobShape,
} from '@pipeline/core';

export class ConfigError extends Error {
  readonly code = 'CONFIG';
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

export interface CloudConfig {
  project: string;
  region: string;
  zone: string;
  outputBucket: string;
  workerJob: string;
  /**
   * WORKER_JOB_CPU, WORKER_JOB_MEMORY and WORKER_JOB_GPU: what WORKER_JOB is defined with, which an
   * execution can't change. The router sends a job that needs more to a VM; absent, it takes the job
   * to hold whatever fits Cloud Run Jobs' limits. WORKER_JOB_TIMEOUT: its task timeout, which a job
   * without a timeout of its own runs with.
   */
  cloudRunJob?: CloudRunJobShape;
  /** WORKER_IMAGE: the worker job's image, and a VM task's when its route names none (`logreg`). */
  workerImage: string;
  /** AGENT_IMAGE: the VM agent's image (jobs/agent), which every task VM's start-up script runs. */
  agentImage: string;
  workerServiceAccount: string;
  vm: {
    machineType: string;
    imageFamily: string;
    imageProject: string;
    network: string;
    subnetwork?: string;
    externalIp: boolean;
    spot: boolean;
    timeoutMarginSeconds: number;
    /** The value of this deployment's `pipeline` label: the reaper touches no VM with another one. */
    label: string;
    /** VM_ZONES: the zones of REGION a VM is tried in, in order, while they are out of capacity. */
    zones: string[];
  };
  completionsTopic: string;
  /**
   * JOB_EVENTS_TOPIC: where job state changes are published (event-outbox.ts). Absent: no job
   * events are stored or published.
   */
  jobEventsTopic?: string;
  /**
   * The dead-letter pull subscription and where its messages came from (GET /deadletters, replay).
   * Absent without DEAD_LETTER_SUBSCRIPTION: the app then has no dead-letter routes to serve.
   */
  deadLetters?: DeadLetterConfig;
  /** gs://bucket/prefix/ copied into /tmp/worker on every task VM (certificates, say). */
  sharedUri?: string;
  pushAuth:
    | {
        enabled: true;
        audience: string;
        pushServiceAccount: string;
        jobCallers: string[];
        /**
         * JOBS_ACCEPT_GCLOUD_TOKENS: the jobs API also takes a listed person's own gcloud identity
         * token, whose audience is gcloud's OAuth client, not this service (see README, Identity).
         */
        acceptGcloudTokens: boolean;
      }
    | { enabled: false };
  pipelineConfig: string;
  port: number;
  /** The address to listen on; all interfaces when unset (as Cloud Run wants). */
  host?: string;
  leaseMs: number;
  /** What bounds launches (capacity.ts); VM vCPUs and GPUs also by the region's quotas, read from Compute. */
  capacity: {
    runExecutions: number;
    runJobsPerMinute: number;
    /** VM_MAX_VCPUS: at most this many vCPUs of VMs at once, below what the quota allows. */
    vmCpus?: number;
  };
  ledgerCollection: string;
  runApiEndpoint?: string;
  computeApiEndpoint?: string;
}

export interface DeadLetterConfig {
  /** The pull subscription on the dead-letter topic (an id in `project`). */
  subscription: string;
  /** The push subscriptions that dead-letter, each with the topic it reads (where a replay goes). */
  uploads: { subscription: string; topic: string };
  completions: { subscription: string; topic: string };
}

const DEFAULT_PIPELINE_CONFIG = path.resolve(import.meta.dirname, '../../../pipeline.config.json');
const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
// Pub/Sub topic and subscription ids share one rule: 3 to 255 characters, starting with a letter.
const PUBSUB_ID = /^[A-Za-z][\w.~+%-]{2,254}$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
// A Docker image reference: [host[:port]/]path[:tag][@sha256:digest], each path part lower case.
const IMAGE_REFERENCE =
  /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

export function parseConfig(env: NodeJS.ProcessEnv = process.env): CloudConfig {
  const text = (name: string, fallback?: string): string => {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    throw new ConfigError(name, 'is required');
  };
  const optional = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const matching = (name: string, pattern: RegExp, what: string, fallback?: string): string => {
    const value = text(name, fallback);
    if (!pattern.test(value)) throw new ConfigError(name, `${JSON.stringify(value)} is not ${what}`);
    return value;
  };
  const optionalMatching = (name: string, pattern: RegExp, what: string): string | undefined => {
    const value = optional(name);
    if (value !== undefined && !pattern.test(value))
      throw new ConfigError(name, `${JSON.stringify(value)} is not ${what}`);
    return value;
  };
  const flag = (name: string, fallback: boolean): boolean => {
    const value = optional(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(value)) return true;
    if (['false', '0', 'no', 'off'].includes(value)) return false;
    throw new ConfigError(name, `${JSON.stringify(env[name])} is not true or false`);
  };
  const endpoint = (name: string): string | undefined => {
    const value = optional(name);
    if (value !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(value))
      throw new ConfigError(name, `${JSON.stringify(value)} is not like http://host:port`);
    return value?.replace(/\/$/, '');
  };
  const count = (name: string, min: number, max: number, fallback?: number): number | undefined => {
    const value = optional(name);
    if (value === undefined) return fallback;
    const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
    if (!(n >= min && n <= max))
      throw new ConfigError(name, `${JSON.stringify(value)} is not a whole number from ${min} to ${max}`);
    return n;
  };
  const duration = (name: string, fallback: string): number => {
    try {
      return parseDuration(text(name, fallback), name);
    } catch (err) {
      throw new ConfigError(name, (err as Error).message);
    }
  };

  const region = matching('REGION', /^[a-z]+-[a-z]+\d+$/, 'a region like us-central1');
  const zone = matching('ZONE', /^[a-z]+-[a-z]+\d+-[a-z]$/, 'a zone like us-central1-a');
  if (!zone.startsWith(`${region}-`)) throw new ConfigError('ZONE', `${zone} is not in REGION ${region}`);
  const vmZones = zoneList(optional('VM_ZONES'), zone, region);
  const port = Number(text('PORT', '8080'));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError('PORT', `${JSON.stringify(env.PORT)} is not a port number`);

  const pushAuthEnabled = flag('PUSH_AUTH', true);
  if (!pushAuthEnabled && optional('K_SERVICE') !== undefined) {
    throw new ConfigError(
      'PUSH_AUTH',
      'off is for emulators and tests, and this runs on Cloud Run (K_SERVICE is set)',
    );
  }
  const pushServiceAccount = pushAuthEnabled
    ? matching('PUSH_SERVICE_ACCOUNT', EMAIL, 'a service account email')
    : '';
  const callers = (optional('JOBS_CALLERS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const caller of callers)
    if (!EMAIL.test(caller))
      throw new ConfigError('JOBS_CALLERS', `${JSON.stringify(caller)} is not an email`);
  const acceptGcloudTokens = flag('JOBS_ACCEPT_GCLOUD_TOKENS', false);

  const completionsTopic = matching('COMPLETIONS_TOPIC', PUBSUB_ID, 'a topic name');
  const deadLetters = deadLetterConfig({
    subscription: optionalMatching('DEAD_LETTER_SUBSCRIPTION', PUBSUB_ID, 'a subscription id'),
    uploadsTopic: optionalMatching('UPLOADS_TOPIC', PUBSUB_ID, 'a topic name'),
    uploadsSubscription: optionalMatching('UPLOADS_SUBSCRIPTION', PUBSUB_ID, 'a subscription id'),
    completionsSubscription: optionalMatching('COMPLETIONS_SUBSCRIPTION', PUBSUB_ID, 'a subscription id'),
    completionsTopic,
  });

  return {
    project: matching('GOOGLE_CLOUD_PROJECT', /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'a project id'),
    region,
    zone,
    outputBucket: matching('OUTPUT_BUCKET', /^[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9]$/, 'a bucket name'),
    workerJob: matching('WORKER_JOB', NAME, 'a Cloud Run job name'),
    ...withDefined('cloudRunJob', cloudRunJobShape(optional)),
    workerImage: text('WORKER_IMAGE'),
    // It reaches the start-up script as data (metadata), and `docker pull` and `docker run` as one
    // argument each: a reference, not something that could be read as an option.
    agentImage: matching(
      'AGENT_IMAGE',
      IMAGE_REFERENCE,
      'an image like REGION-docker.pkg.dev/PROJECT/REPO/agent:TAG',
    ),
    workerServiceAccount: matching('WORKER_SERVICE_ACCOUNT', EMAIL, 'a service account email'),
    vm: {
      machineType: matching(
        'VM_MACHINE_TYPE',
        /^[a-z0-9]+-[a-z0-9-]+$/,
        'a machine type like e2-standard-4',
        'e2-standard-2',
      ),
      imageFamily: matching('VM_IMAGE_FAMILY', NAME, 'a Container-Optimized OS image family', 'cos-stable'),
      imageProject: matching(
        'VM_IMAGE_PROJECT',
        /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/,
        'a project id',
        'cos-cloud',
      ),
      network: text('VM_NETWORK', 'default'),
      subnetwork: optional('VM_SUBNETWORK'),
      externalIp: flag('VM_EXTERNAL_IP', false),
      spot: flag('VM_SPOT', false),
      timeoutMarginSeconds: duration('VM_TIMEOUT_MARGIN', '10m'),
      label: matching('VM_LABEL', /^[a-z0-9][a-z0-9_-]{0,62}$/, 'a label value (a-z, 0-9, - and _)', 'true'),
      zones: vmZones,
    },
    completionsTopic,
    jobEventsTopic: optionalMatching('JOB_EVENTS_TOPIC', PUBSUB_ID, 'a topic name'),
    deadLetters,
    sharedUri: optionalMatching(
      'SHARED_URI',
      /^gs:\/\/[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9](\/.*)?$/s,
      'a gs://bucket/prefix/ URI',
    ),
    pushAuth: pushAuthEnabled
      ? {
          enabled: true,
          audience: text('PUSH_AUDIENCE'),
          pushServiceAccount,
          jobCallers: callers,
          acceptGcloudTokens,
        }
      : { enabled: false },
    pipelineConfig: text('PIPELINE_CONFIG', DEFAULT_PIPELINE_CONFIG),
    port,
    host: optional('HOST'),
    leaseMs: duration('CLAIM_LEASE', '10m') * 1000,
    capacity: {
      // Cloud Run allows 1,000 running executions per project and region, and not one more.
      runExecutions: count(
        'RUN_MAX_EXECUTIONS',
        1,
        CLOUD_RUN_MAX_RUNNING_EXECUTIONS,
        DEFAULT_RUN_EXECUTIONS,
      )!,
      runJobsPerMinute: count('RUN_JOBS_PER_MINUTE', 1, 100_000, DEFAULT_RUN_JOBS_PER_MINUTE)!,
      ...withDefined('vmCpus', count('VM_MAX_VCPUS', 1, 1_000_000)),
    },
    ledgerCollection: matching('LEDGER_COLLECTION', /^[A-Za-z][\w-]{0,99}$/, 'a collection id', 'jobs'),
    runApiEndpoint: endpoint('RUN_API_ENDPOINT'),
    computeApiEndpoint: endpoint('COMPUTE_API_ENDPOINT'),
  };
}

/**
 * WORKER_JOB_CPU ("2") and WORKER_JOB_MEMORY ("4Gi", as terraform writes the job's limits), both or
 * neither; WORKER_JOB_GPU ("nvidia-l4", only with them) when the job has one; WORKER_JOB_TIMEOUT
 * ("3600s", as terraform writes the job's timeout; only with them).
 */
function cloudRunJobShape(optional: (name: string) => string | undefined): CloudRunJobShape | undefined {
  const names = {
    cpu: 'WORKER_JOB_CPU',
    memory: 'WORKER_JOB_MEMORY',
    gpu: 'WORKER_JOB_GPU',
    timeout: 'WORKER_JOB_TIMEOUT',
  } as const;
  const text = Object.fromEntries(Object.entries(names).map(([field, name]) => [field, optional(name)]));
  try {
    return parseCloudRunJobDefinition(text, names);
  } catch (err) {
    if (err instanceof CloudRunJobDefinitionError) throw new ConfigError(err.field, err.problem);
    throw err;
  }
}

function withDefined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** VM_ZONES, like "us-central1-a,us-central1-b": zones of REGION, each once; default [ZONE]. */
function zoneList(value: string | undefined, zone: string, region: string): string[] {
  if (value === undefined) return [zone];
  const zones = value.split(',').map((z) => z.trim());
  for (const z of zones) {
    if (!/^[a-z]+-[a-z]+\d+-[a-z]$/.test(z))
      throw new ConfigError('VM_ZONES', `${JSON.stringify(z)} is not a zone like us-central1-a`);
    if (!z.startsWith(`${region}-`)) throw new ConfigError('VM_ZONES', `${z} is not in REGION ${region}`);
  }
  if (new Set(zones).size !== zones.length) throw new ConfigError('VM_ZONES', `${value} names a zone twice`);
  return zones;
}

/**
 * The dead-letter settings go together: a replay needs the topic each source subscription reads, so
 * DEAD_LETTER_SUBSCRIPTION requires the uploads and completions subscriptions and the uploads topic
 * (the completions topic is COMPLETIONS_TOPIC, required anyway).
 */
function deadLetterConfig(values: {
  subscription?: string;
  uploadsTopic?: string;
  uploadsSubscription?: string;
  completionsSubscription?: string;
  completionsTopic: string;
}): DeadLetterConfig | undefined {
  if (values.subscription === undefined) return undefined;
  const required = (name: string, value: string | undefined): string => {
    if (value === undefined) throw new ConfigError(name, 'is required with DEAD_LETTER_SUBSCRIPTION');
    return value;
  };
  const uploads = required('UPLOADS_SUBSCRIPTION', values.uploadsSubscription);
  const completions = required('COMPLETIONS_SUBSCRIPTION', values.completionsSubscription);
  // Each dead letter is told apart by the subscription it came from: the three must differ.
  if (uploads === completions)
    throw new ConfigError('COMPLETIONS_SUBSCRIPTION', `${completions} is UPLOADS_SUBSCRIPTION too`);
  if (values.subscription === uploads || values.subscription === completions)
    throw new ConfigError(
      'DEAD_LETTER_SUBSCRIPTION',
      `${values.subscription} is a push subscription it dead-letters for`,
    );
  return {
    subscription: values.subscription,
    uploads: { subscription: uploads, topic: required('UPLOADS_TOPIC', values.uploadsTopic) },
    completions: { subscription: completions, topic: values.completionsTopic },
  };
}
