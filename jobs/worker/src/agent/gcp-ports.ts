// The agent's ports on a Compute Engine VM: the metadata server (gcp-metadata, which honours
// GCE_METADATA_HOST), the Docker Engine (dockerode: DOCKER_HOST or /var/run/docker.sock), Cloud
// Storage, Pub/Sub and the Compute API (COMPUTE_API_ENDPOINT points it elsewhere, for tests).
// Credentials are the VM's service account through Application Default Credentials.
import fs from 'node:fs';
import path from 'node:path';
import { saveLog, storageClient } from '../io/gcs.ts';
import { parseLocation } from '../io/location.ts';
import { registryAuthFor, runContainer } from './docker.ts';
import type { AgentPorts, Identity } from './vm-agent.ts';

type GcpMetadata = typeof import('gcp-metadata');
let metadataModule: Promise<GcpMetadata> | undefined;
const metadata = () => (metadataModule ??= import('gcp-metadata'));

export function gcpAgentPorts(log: AgentPorts['log']): AgentPorts {
  return {
    log,
    now: () => new Date(),
    async attribute(name) {
      try {
        // gcp-metadata parses values that look like JSON (the task, a number): give back the text.
        const value: unknown = await (await metadata()).instance(`attributes/${name}`);
        return typeof value === 'string' ? value : JSON.stringify(value);
      } catch (err) {
        if ((err as { status?: number; response?: { status?: number } }).response?.status === 404)
          return undefined;
        throw err;
      }
    },
    async identity(): Promise<Identity> {
      const m = await metadata();
      const [project, zone, instance] = await Promise.all([
        m.project('project-id'),
        m.instance('zone'),
        m.instance('name'),
      ]);
      return { project: String(project), zone: String(zone).split('/').pop()!, instance: String(instance) };
    },
    async accessToken() {
      const token = (await (await metadata()).instance('service-accounts/default/token')) as {
        access_token: string;
      };
      return token.access_token;
    },
    async watchPreemption(signal) {
      const m = await metadata();
      const stopped = new Promise<false>((resolve) =>
        signal.addEventListener('abort', () => resolve(false), { once: true }),
      );
      while (!signal.aborted) {
        // The metadata server answers when the value changes, or after timeout_sec with the same value.
        const change = m.instance({
          property: 'preempted',
          params: { wait_for_change: 'true', timeout_sec: '60' },
        });
        const value = await Promise.race([change.then(String), stopped]);
        if (value === 'TRUE') return true;
      }
      return false;
    },
    async copyShared(uri, dir) {
      const location = parseLocation(uri, 'sharedUri');
      if (location.kind !== 'gcs') throw new Error(`sharedUri ${uri} is not a gs:// prefix`);
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
      const Docker = (await import('dockerode')).default;
      const docker = new Docker();
      return runContainer(
        docker,
        {
          image: spec.image,
          args: spec.args,
          env: spec.env,
          binds: spec.binds,
          registryAuth: registryAuthFor(spec.image, spec.accessToken),
        },
        (_stream, chunk) => output(chunk),
        signal,
      );
    },
    uploadLog: saveLog,
    async publish(project, topic, message, attributes) {
      const { PubSub } = await import('@google-cloud/pubsub');
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
      const client = new InstancesClient({
        fallback: true,
        ...(url === undefined
          ? {}
          : { apiEndpoint: url.hostname, port: Number(url.port), protocol: url.protocol.slice(0, -1) }),
      });
      try {
        await client.delete({ project, zone, instance });
      } finally {
        await client.close();
      }
    },
  };
}
