// The real start-up script of every task VM (gcp/vm-startup.sh), run on the real Docker engine in a
// container standing in for Container-Optimized OS, with stand-ins for COS's docker-credential-gcr
// (which gives the docker CLI the VM's token, read from the metadata server, as the real helper does)
// and poweroff. The VM is what the real Compute launcher inserted into the Compute double: its
// metadata is served by the metadata double. The script pulls the agent image, built here from
// jobs/agent/Dockerfile and pushed to a real registry that takes only the VM's token, and starts it
// as its image's non-root user. The agent copies the shared bucket's files, pulls the
// task's image from the same registry, runs it, uploads its log, publishes its completion to the
// Pub/Sub emulator, and deletes the VM.
import { afterAll, beforeAll, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PubSub, type Subscription } from '@google-cloud/pubsub';
import { OAuth2Client } from 'google-auth-library';
import { parseCompletionEvent } from '@pipeline/core';
import { ComputeEngineLauncher, VM_STARTUP_SCRIPT_PATH } from '../../src/gcp/compute-launcher.ts';
import { closeGoogleClients } from '../../src/gcp/clients.ts';
import { testComputeSettings, testLaunchRequest } from './test-launchers.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import {
  describeWithDocker,
  docker,
  DOCKER_SOCKET,
  ensureBusyboxImage,
  removeImages,
} from '../../../../test/support/docker-engine.ts';
import { buildAgentImage, ensureCosStandInImage } from '../../../../test/support/images.ts';
import { startRegistry, type Registry } from '../../../../test/support/registry.ts';
import { startFakeMetadata, type FakeMetadata } from '../../../../test/support/fake-metadata.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { writeCosTools } from '../../../../test/support/cos.ts';

const TOKEN = 'ya29.vm-token';
const PROJECT = 'acme';
const ZONE = 'europe-west1-b';

describeWithDocker('vm-startup.sh in a COS stand-in on the real Docker engine', () => {
  describeWithEmulators(['pubsub'], 'with the real agent image and registry', () => {
    let registry: Registry;
    let pubsubEmulator: Emulator;
    let pubsub: PubSub;
    let completions: Subscription;
    let metadata: FakeMetadata;
    let compute: FakeCompute;
    let gcs: FakeGcs;
    let dir: string;
    let agentImage: string;
    let taskImage: string;
    let cos: string;

    beforeAll(async () => {
      [registry, pubsubEmulator, compute, gcs] = await Promise.all([
        startRegistry(TOKEN),
        startEmulator('pubsub'),
        startFakeCompute(),
        startFakeGcs(),
      ]);
      const [agent, busybox] = await Promise.all([buildAgentImage(), ensureBusyboxImage()]);
      [agentImage, taskImage, cos] = await Promise.all([
        registry.push(agent, 'pipeline/agent:1'),
        registry.push(busybox, 'pipeline/task:1'),
        ensureCosStandInImage(),
      ]);
      pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: pubsubEmulator.host });
      const [topic] = await pubsub.createTopic('completions');
      [completions] = await topic.createSubscription('completions-pull');
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vm-startup-'));
    }, 600_000);
    afterAll(async () => {
      await closeGoogleClients();
      await pubsub?.close();
      await Promise.all([
        registry?.stop(),
        pubsubEmulator?.stop(),
        compute?.close(),
        gcs?.close(),
        metadata?.close(),
      ]);
      await removeImages(agentImage, taskImage);
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('copies the shared files as the agent user, runs the task to a completion, and the VM is deleted', async () => {
      gcs.put('acme-shared', 'ca.pem', '-----BEGIN CERTIFICATE-----\n');
      gcs.put('acme-shared', 'keys/client.key', 'secret\n');

      // The VM as the dispatcher makes it, with the real start-up script in its metadata.
      const launcher = new ComputeEngineLauncher(
        testComputeSettings(compute.endpoint, tokenClient(), {
          project: PROJECT,
          zone: ZONE,
          agentImage,
          completionsTopic: 'completions',
          sharedUri: 'gs://acme-shared/',
          startupScript: fs.readFileSync(VM_STARTUP_SCRIPT_PATH, 'utf8'),
        }),
      );
      const shared = path.join(dir, 'shared'); // the VM's folder of the shared files: the same path for host and containers
      // The task sees the shared files at /tmp/worker, whatever folder of the VM holds them.
      const script =
        'echo "task runs as $(id -u)"; cat /tmp/worker/ca.pem /tmp/worker/keys/client.key; ls -ln /tmp/worker';
      const request = testLaunchRequest(
        'vm',
        { image: taskImage, timeoutSeconds: 600, args: ['sh', '-c', script] },
        'data/q1.csv',
      );
      const { execution } = await launcher.launch(request);
      const name = execution.split('/').pop()!;
      const instance = compute.instances.get(name)!;
      const items = (instance.metadata as { items: { key: string; value: string }[] }).items;
      metadata = await startFakeMetadata(
        {
          'project/project-id': PROJECT,
          'instance/name': name,
          'instance/zone': `projects/123456/zones/${ZONE}`,
          ...Object.fromEntries(items.map(({ key, value }) => [`instance/attributes/${key}`, value])),
        },
        { token: TOKEN },
      );
      const record = path.join(dir, 'record');
      const stubs = path.join(dir, 'stubs');
      fs.mkdirSync(record);
      writeCosTools(stubs);
      fs.writeFileSync(
        path.join(dir, 'startup-script'),
        items.find((i) => i.key === 'startup-script')!.value,
      );

      // COS runs the `startup-script` metadata value as root; so does the stand-in.
      const started = Date.now();
      const run = await docker(
        [
          'run',
          '--rm',
          '--network',
          'host',
          '-v',
          `${DOCKER_SOCKET}:${DOCKER_SOCKET}`,
          '-v',
          '/usr:/usr:ro',
          '-v',
          `${stubs}:/opt/stubs:ro`,
          '-v',
          `${record}:/opt/record`,
          // COS's /tmp/worker is the host's: the script makes it, the agent and the task mount it.
          '-v',
          `${shared}:${shared}`,
          '-v',
          `${path.join(dir, 'startup-script')}:/startup-script:ro`,
          '-e',
          'PATH=/opt/stubs:/usr/local/bin:/usr/bin:/bin',
          '-e',
          `GCE_METADATA_HOST=${metadata.host}`,
          '-e',
          `COMPUTE_API_ENDPOINT=${compute.endpoint}`,
          '-e',
          `STORAGE_EMULATOR_HOST=${gcs.url}`,
          '-e',
          `PUBSUB_EMULATOR_HOST=${pubsubEmulator.host}`,
          '-e',
          `PIPELINE_TOKEN_REGISTRIES=${registry.host}`,
          '-e',
          `AGENT_SHARED_DIR=${shared}`,
          // A name of its own: another run of this file (or the box) may share the engine.
          '-e',
          `AGENT_CONTAINER_NAME=vm-startup-agent-${path.basename(dir)}`,
          cos,
          '/bin/bash',
          '/startup-script',
        ],
        { timeoutMs: 300_000 },
      ).catch((err: Error) => ({ stdout: '', stderr: err.message, failed: true }));
      const seconds = (Date.now() - started) / 1000;
      expect('failed' in run, run.stderr).toBe(false);

      // The task ran, and saw the shared files, which belong to the agent's user (node, 1000).
      const log = gcs.get('acme-output', 'data/q1.csv/logs/attempt-1.log')?.body.toString('utf8') ?? '';
      expect(log, run.stderr).toContain('task runs as 0');
      expect(log).toContain('-----BEGIN CERTIFICATE-----\nsecret\n');
      expect(log).toMatch(/-rw-\S+\s+\d+\s+1000\s+1000\s+\d+ .* ca\.pem/);
      expect(log).toMatch(/d\S+\s+\d+\s+1000\s+1000\s+\d+ .* keys/);

      // One completion, which the dispatcher's parser reads, and the VM deleted.
      const [message] = await pullOne();
      expect(parseCompletionEvent(message)).toMatchObject({
        kind: 'completion',
        completion: { jobId: request.job.id, attempt: 1, exitCode: 0, preempted: false },
      });
      expect(compute.deleted).toContain(name);
      expect(compute.instances.has(name)).toBe(false);
      expect(fs.readFileSync(path.join(record, 'credential-helper-configured'), 'utf8')).toBe(
        `${registry.host}\n`,
      );
      expect(fs.existsSync(path.join(record, 'poweroff'))).toBe(false);
      expect(run.stderr).toMatch(/starting the agent .* as 1000:1000/);
      process.stderr.write(`vm-startup.sh ran the task in ${seconds.toFixed(1)} s from its start\n`);
    }, 600_000);

    async function pullOne(): Promise<Record<string, unknown>[]> {
      const got: Record<string, unknown>[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no completion was published')), 30_000);
        completions.once('message', (message: { data: Buffer; ack(): void }) => {
          clearTimeout(timer);
          got.push(JSON.parse(message.data.toString('utf8')));
          message.ack();
          resolve();
        });
      });
      await completions.close();
      return got;
    }
  });
});

function tokenClient(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 3_600_000 });
  return client;
}
