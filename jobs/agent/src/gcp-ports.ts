// The agent's ports on a Compute Engine VM: the metadata server (gcp-metadata, which honours
// GCE_METADATA_HOST), the Docker Engine (dockerode: DOCKER_HOST or /var/run/docker.sock), Cloud
// Storage, Pub/Sub and the Compute API (COMPUTE_API_ENDPOINT points it elsewhere, for tests).
// Credentials are the VM's service account through Application Default Credentials. Every metadata
// read is retried with backoff: the server answers 503 now and then, and a blip must not fail a task.
import fs from 'node:fs';
import path from 'node:path';
import { gsLocation, saveLog, storageClient } from './gcs.ts';
import { pause, withBackoff, backoffDelay } from './backoff.ts';
import { registryAuthFor, runContainer } from './docker.ts';
import type { AgentPorts, Identity } from './vm-agent.ts';

type GcpMetadata = typeof import('gcp-metadata');
let metadataModule: Promise<GcpMetadata> | undefined;
const metadata = () => (metadataModule ??= import('gcp-metadata'));
let pubsubImport: Promise<typeof import('@google-cloud/pubsub')> | undefined;
const pubsubModule = () => (pubsubImport ??= import('@google-cloud/pubsub'));

/** Registries besides Google's that get the VM's token (comma-separated hosts; tests only, unset on a VM). */
const TOKEN_REGISTRIES = (process.env.PIPELINE_TOKEN_REGISTRIES ?? '')
  .split(',')
  .map((host) => host.trim().toLowerCase())
  .filter((host) => host !== '');

/** The HTTP status of a Compute client's error (gax's REST transport puts it in httpStatusCode). */
const httpStatusOf = (err: unknown): number | undefined => {
  const status = (err as { httpStatusCode?: unknown } | null)?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
};

/** A request that the client itself ended for taking too long (gaxios 8: code TimeoutError). */
const isTimeout = (err: unknown): boolean => {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e?.code === 'TimeoutError' || e?.name === 'TimeoutError';
};

const statusOf = (err: unknown) =>
  (err as { status?: number; response?: { status?: number } }).response?.status ??
  (err as { status?: number }).status;

/** How long one wait for `instance/preempted` lasts at most. */
const PREEMPTION_WAIT_SECONDS = 10;

/**
 * Variables that point Google's libraries elsewhere (tests only; none is set on a VM): those the
 * start-up script handed to the agent are handed on to the task, under the task's own env, so a task
 * in a stand-in VM finds the same doubles the agent does.
 */
const PASSED_TO_TASK = [
  'GCE_METADATA_HOST',
  'METADATA_SERVER_DETECTION',
  'STORAGE_EMULATOR_HOST',
  'PUBSUB_EMULATOR_HOST',
];

function passedToTask(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    PASSED_TO_TASK.flatMap((name) => (env[name] ? [[name, env[name]] as [string, string]] : [])),
  );
}

export interface GcpAgentOptions {
  /** The first pause of a metadata retry; default 500 ms (tests: less). */
  firstRetryDelayMs?: number;
  /** Between SIGTERM and SIGKILL when the task is stopped; default vm-agent's STOP_GRACE_SECONDS. */
  stopGraceSeconds?: number;
}

export function gcpAgentPorts(log: AgentPorts['log'], options: GcpAgentOptions = {}): AgentPorts {
  const firstDelayMs = options.firstRetryDelayMs ?? 500;
  /** A metadata read, retried while the server fails; a 404 (the key is not set) is final. */
  const read = <T>(what: string, work: (m: GcpMetadata) => Promise<T>) =>
    withBackoff(async () => work(await metadata()), {
      firstDelayMs,
      isFinal: (err) => statusOf(err) === 404,
      onRetry: (err, delayMs) =>
        log(`reading ${what} from the metadata server failed; trying again`, {
          error: (err as Error).message,
          delayMs,
        }),
    });
  return {
    log,
    now: () => new Date(),
    ...(options.stopGraceSeconds === undefined ? {} : { stopGraceSeconds: options.stopGraceSeconds }),
    async attribute(name) {
      try {
        // gcp-metadata parses values that look like JSON (the task, a number): give back the text.
        const value: unknown = await read(name, (m) => m.instance(`attributes/${name}`));
        return typeof value === 'string' ? value : JSON.stringify(value);
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
    async identity(): Promise<Identity> {
      const [project, zone, instance] = await Promise.all([
        read('project-id', (m) => m.project('project-id')),
        read('zone', (m) => m.instance('zone')),
        read('name', (m) => m.instance('name')),
      ]);
      return { project: String(project), zone: String(zone).split('/').pop()!, instance: String(instance) };
    },
    async accessToken() {
      const token = (await read('the access token', (m) => m.instance('service-accounts/default/token'))) as {
        access_token: string;
      };
      return token.access_token;
    },
    async isPreempted() {
      return String(await read('preempted', (m) => m.instance('preempted'))) === 'TRUE';
    },
    async watchPreemption(signal) {
      const stopped = new Promise<false>((resolve) =>
        signal.addEventListener('abort', () => resolve(false), { once: true }),
      );
      // Never rejects: a failing metadata server is asked again, with a growing pause, until the run ends.
      for (let failures = 0; !signal.aborted;) {
        try {
          const m = await metadata();
          // A plain read first: a wait only notices a change after it starts.
          if (String(await m.instance('preempted')) === 'TRUE') return true;
          // The metadata server answers when the value changes, or after timeout_sec with the same value.
          // A change between the plain read and the wait's start is only seen by the next plain read
          // (https://cloud.google.com/compute/docs/metadata/querying-metadata, "Use ETags"), so the
          // wait is kept well below the 30 s between a preemption's notice and the power-off.
          const change = m.instance({
            property: 'preempted',
            params: { wait_for_change: 'true', timeout_sec: String(PREEMPTION_WAIT_SECONDS) },
          });
          change.catch(() => undefined); // a read abandoned when the run ends may still fail
          const value = await Promise.race([change.then(String), stopped]);
          if (value === 'TRUE') return true;
          failures = 0;
        } catch (err) {
          // gcp-metadata gives up on a request after 3 s (and three retries of its own, about 14 s in
          // all) where it does not find itself on Google Cloud (requestTimeout: none on a VM): a wait
          // cut short that way saw no change, like one answered after timeout_sec.
          if (isTimeout(err)) {
            failures = 0;
            continue;
          }
          failures++;
          const delayMs = backoffDelay(failures, firstDelayMs, 30_000);
          log('watching for preemption failed; trying again', { error: (err as Error).message, delayMs });
          await pause(delayMs, signal);
        }
      }
      return false;
    },
    async copyShared(uri, dir) {
      const location = gsLocation(uri, 'sharedUri');
      const storage = await storageClient();
      const [files] = await storage.bucket(location.bucket).getFiles({ prefix: location.name });
      let copied = 0;
      for (const file of files) {
        const relative = file.name.slice(location.name.length);
        if (
          relative === '' ||
          relative.endsWith('/') ||
          relative.split('/').some((s) => s === '..' || s === '.')
        )
          continue;
        const target = path.join(dir, ...relative.split('/'));
        fs.mkdirSync(path.dirname(target), { recursive: true });
        await file.download({ destination: target });
        copied++;
      }
      return copied;
    },
    async runContainer(spec, output, signal) {
      // Loaded while the task runs, so that reporting its end (30 s at most after a preemption's
      // notice) does not also wait for the Pub/Sub client's modules to load.
      void pubsubModule().catch(() => undefined);
      const Docker = (await import('dockerode')).default;
      const docker = new Docker();
      return runContainer(
        docker,
        {
          image: spec.image,
          args: spec.args,
          env: { ...passedToTask(process.env), ...spec.env },
          binds: spec.binds,
          devices: spec.devices,
          ...(spec.libraryPath === undefined ? {} : { libraryPath: spec.libraryPath }),
          labels: spec.labels,
          registryAuth: registryAuthFor(spec.image, spec.accessToken, TOKEN_REGISTRIES),
          stopGraceSeconds: spec.stopGraceSeconds,
        },
        (_stream, chunk) => output(chunk),
        signal,
      );
    },
    uploadLog: saveLog,
    async publish(project, topic, message, attributes) {
      const { PubSub } = await pubsubModule();
      const pubsub = new PubSub({ projectId: project });
      try {
        await pubsub.topic(topic).publishMessage({ json: message, attributes });
      } finally {
        await pubsub.close();
      }
    },
    async deleteInstance({ project, zone, instance }) {
      const { InstancesClient } = await import('@google-cloud/compute/build/src/v1/instances_client.js');
      const endpoint = process.env.COMPUTE_API_ENDPOINT;
      const url = endpoint === undefined ? undefined : new URL(endpoint);
      const options = {
        fallback: true,
        ...(url === undefined
          ? {}
          : { apiEndpoint: url.hostname, port: Number(url.port), protocol: url.protocol.slice(0, -1) }),
      };
      // Retried: a VM whose delete failed runs (and bills) until maxRunDuration. Already gone is done.
      // Each try has a client of its own, initialised (credentials found) before the call: a gax client
      // whose credentials failed keeps failing, and its calls would reject where nobody awaits
      // (googleapis/google-cloud-node#9085).
      await withBackoff(
        async () => {
          const client = new InstancesClient(options);
          try {
            await client.initialize();
            await client.delete({ project, zone, instance });
          } catch (err) {
            if (httpStatusOf(err) !== 404) throw err;
          } finally {
            await client.close().catch(() => undefined);
          }
        },
        {
          tries: 5,
          firstDelayMs,
          isFinal: (err) => {
            const status = httpStatusOf(err);
            return status !== undefined && status >= 400 && status < 500 && status !== 429;
          },
          onRetry: (err, delayMs) =>
            log('deleting this instance failed; trying again', { error: (err as Error).message, delayMs }),
        },
      );
    },
  };
}
