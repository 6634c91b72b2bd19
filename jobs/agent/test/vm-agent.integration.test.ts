// The VM agent as it runs on a VM, `pipeline-agent` in a child process, with the real Docker
// engine of this machine and a real registry (docker-registry on loopback, whose password is the
// VM's access token, as Artifact Registry takes it), the task images pulled from there. Around it,
// loopback doubles that speak the real protocols: the metadata server (gcp-metadata via
// GCE_METADATA_HOST), the Cloud Storage JSON API, the Pub/Sub emulator for the completions topic, and
// a Compute API double that must see the self-delete. A GPU task runs against the Docker Engine API
// double instead, since this machine has no GPU: the test reads the create request it got.
import { afterAll, beforeAll, beforeEach, afterEach, expect, it } from 'vitest';
import { PubSub, type Subscription } from '@google-cloud/pubsub';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCompletionEvent } from '@pipeline/core';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../test/support/emulators.ts';
import { startFakeMetadata, type FakeMetadata } from '../../../test/support/fake-metadata.ts';
import {
  describeWithDocker,
  docker,
  ensureBusyboxImage,
  removeImages,
} from '../../../test/support/docker-engine.ts';
import { startRegistry, type Registry } from '../../../test/support/registry.ts';
import { startFakeDocker } from '../../../test/support/fake-docker.ts';
import { startFakeGcs, type FakeGcs } from '../../../test/support/fake-gcs.ts';
import { startFakeCompute, type FakeCompute } from '../../../test/support/fake-compute.ts';
import { runGuarded } from '../../../test/support/run-worker.ts';

const AGENT_BIN = path.resolve(import.meta.dirname, '../bin/pipeline-agent.js');

const PROJECT = 'test-project';
const ZONE = 'us-central1-a';
const INSTANCE = 'pipeline-abababababababababab-a1';
const JOB = 'ab'.repeat(16);
const TOKEN = 'ya29.vm-token';
const HOSTILE = `it's "quoted" $(touch /tmp/x) \`id\`\nsecond line ünïcødé; rm -rf / &`;

describeWithDocker('the VM agent on the real Docker engine', () => {
  describeWithEmulators(['pubsub'], 'and a real registry', () => {
    let pubsubEmulator: Emulator;
    let pubsub: PubSub;
    let completions: Subscription;
    let registry: Registry;
    let image: string;
    let metadata: FakeMetadata | undefined;
    let gcs: FakeGcs;
    let compute: FakeCompute;
    let shared: string;

    beforeAll(async () => {
      [pubsubEmulator, registry] = await Promise.all([startEmulator('pubsub'), startRegistry(TOKEN)]);
      pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: pubsubEmulator.host });
      const [topic] = await pubsub.createTopic('completions');
      [completions] = await topic.createSubscription('completions-pull');
      image = await registry.push(await ensureBusyboxImage(), 'pipeline/task:1');
    }, 120_000);
    afterAll(async () => {
      await pubsub?.close();
      await Promise.all([pubsubEmulator?.stop(), registry?.stop()]);
    });

    beforeEach(async () => {
      [gcs, compute] = await Promise.all([startFakeGcs(), startFakeCompute()]);
      shared = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-shared-'));
      // Every run pulls through the registry, as a new VM does.
      await removeImages(image);
    });
    afterEach(async () => {
      await Promise.all([metadata?.close(), gcs.close(), compute.close()]);
      metadata = undefined;
      fs.rmSync(shared, { recursive: true, force: true });
    });

    /** A task that runs `script` with busybox's sh in the task image. */
    function task(script: string, changes: Record<string, unknown> = {}): string {
      return JSON.stringify({
        jobId: JOB,
        attempt: 1,
        image,
        args: ['sh', '-c', script],
        env: { INPUT_URI: 'gs://in/data.csv', JOB_ID: JOB, HOSTILE },
        logsUri: 'gs://out/data.csv/logs/attempt-1.log',
        timeoutSeconds: 60,
        ...changes,
      });
    }

    async function runAgent(
      pipelineTask: string,
      options: {
        token?: string;
        during?: (metadata: FakeMetadata) => Promise<void>;
        before?: (metadata: FakeMetadata) => void;
        env?: Record<string, string>;
      } = {},
    ) {
      metadata = await startFakeMetadata(
        {
          'project/project-id': PROJECT,
          'instance/name': INSTANCE,
          'instance/zone': `projects/123456/zones/${ZONE}`,
          'instance/attributes/pipeline-task': pipelineTask,
          'instance/attributes/pipeline-job-id': JOB,
          'instance/attributes/pipeline-attempt': '1',
          'instance/attributes/pipeline-completions-topic': 'completions',
        },
        { token: options.token ?? TOKEN },
      );
      options.before?.(metadata);
      const running = runGuarded(AGENT_BIN, [], {
        GCE_METADATA_HOST: metadata.host,
        METADATA_SERVER_DETECTION: 'assume-present',
        STORAGE_EMULATOR_HOST: gcs.url,
        PUBSUB_EMULATOR_HOST: pubsubEmulator.host,
        COMPUTE_API_ENDPOINT: compute.endpoint,
        AGENT_SHARED_DIR: shared,
        PIPELINE_TOKEN_REGISTRIES: registry.host,
        ...options.env,
      });
      await options.during?.(metadata);
      const run = await running;
      const messages = await pullAll();
      const deletes = compute.requests.filter((r) => r.method === 'DELETE');
      const log = gcs.get('out', 'data.csv/logs/attempt-1.log')?.body.toString('utf8');
      return { run, messages, deletes, log };
    }

    /** Every completion published so far (acknowledged, so each test sees only its own). */
    async function pullAll(): Promise<Record<string, unknown>[]> {
      const received: Record<string, unknown>[] = [];
      await new Promise<void>((resolve) => {
        const onMessage = (message: { data: Buffer; ack(): void }) => {
          received.push(JSON.parse(message.data.toString('utf8')));
          message.ack();
        };
        completions.on('message', onMessage);
        setTimeout(() => {
          completions.removeListener('message', onMessage);
          resolve();
        }, 1500);
      });
      await completions.close();
      return received;
    }

    const expectOneDelete = (deletes: { path: string }[]) => {
      expect(deletes.map((d) => d.path)).toEqual([
        `/compute/v1/projects/${PROJECT}/zones/${ZONE}/instances/${INSTANCE}`,
      ]);
    };

    it('pulls with the VM token, runs the task with its env byte-exact and the shared files, reports exit 0 once, deletes the VM', async () => {
      gcs.put('shared-bucket', 'certs/ca.pem', '-----BEGIN CERTIFICATE-----\n');
      gcs.put('shared-bucket', 'certs/client/key.pem', 'secret\n');
      gcs.put('shared-bucket', 'other/ignored.txt', 'no');
      const { run, messages, deletes, log } = await runAgent(
        task(`printf "%s\\n" "$HOSTILE"; cat /tmp/worker/ca.pem /tmp/worker/client/key.pem; ls /tmp/worker`, {
          sharedUri: 'gs://shared-bucket/certs/',
        }),
      );
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(log).toBe(`${HOSTILE}\n-----BEGIN CERTIFICATE-----\nsecret\nca.pem\nclient\n`);
      expect(messages).toHaveLength(1);
      // What the agent wrote is what the dispatcher reads.
      expect(parseCompletionEvent(messages[0])).toMatchObject({
        kind: 'completion',
        completion: { jobId: JOB, attempt: 1, exitCode: 0, preempted: false },
      });
      expect(messages[0]).toMatchObject({ instance: INSTANCE });
      expectOneDelete(deletes);
    });

    it.each([
      [3, 'exit 3', 'out of memory\n'],
      // A child killed as the OOM killer kills; the task's shell says so and exits with its status.
      [137, "sh -c 'kill -KILL $$'; exit $?", 'out of memory\nKilled\n'],
    ])(
      'reports a task that ends with %i as failed, with the tail of its output',
      async (exitCode, end, output) => {
        const { messages, deletes, log } = await runAgent(task(`echo out of memory >&2; ${end}`));
        expect(log).toBe(output);
        expect(messages).toHaveLength(1);
        expect(messages[0]).toMatchObject({ exitCode, error: output.trim() });
        expectOneDelete(deletes);
      },
    );

    it('reports a pull the registry refuses for a wrong token, naming the step and the image', async () => {
      const { messages, deletes } = await runAgent(task('true'), { token: 'ya29.someone-else' });
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ exitCode: 125 });
      expect(String(messages[0].error)).toMatch(new RegExp(`^pulling ${image} failed: .*unauthorized`));
      expectOneDelete(deletes);
    });

    it('reports an image missing from the registry, naming it', async () => {
      const missing = `${registry.host}/pipeline/absent:1`;
      const { messages, deletes, log } = await runAgent(task('true', { image: missing }));
      expect(messages[0]).toMatchObject({ exitCode: 125 });
      expect(String(messages[0].error)).toMatch(
        new RegExp(`^pulling ${missing} failed: .*(not found|unknown)`),
      );
      expect(log).toContain(`pipeline-agent: pulling ${missing} failed`);
      expectOneDelete(deletes);
    });

    it('gives a preempted task SIGTERM first: it can save its work and exit', async () => {
      const script =
        'trap "echo got SIGTERM, saving; exit 0" TERM; echo working; while true; do sleep 0.1; done';
      const { messages, deletes, log } = await runAgent(task(script), {
        during: async (m) => {
          await taskSaid('working');
          m.preempt();
        },
        env: { AGENT_STOP_GRACE_SECONDS: '20' },
      });
      expect(log).toBe('working\ngot SIGTERM, saving\n');
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ exitCode: 0, preempted: true, error: 'the VM was preempted' });
      expectOneDelete(deletes);
    });

    it('keeps watching through waits that its metadata client cuts short, and sees a late preemption', async () => {
      // Off Google Cloud, gcp-metadata ends a request after 3 s (with its own three retries, after about
      // 14 s), also a wait_for_change of 10 s: such a wait saw no change, and the watch goes straight on,
      // with no failure logged and no backoff that a 30 s notice could miss.
      const script = 'trap "echo got SIGTERM; exit 0" TERM; echo working; while true; do sleep 0.1; done';
      const { run, messages } = await runAgent(task(script), {
        during: async (m) => {
          await taskSaid('working');
          await new Promise((resolve) => setTimeout(resolve, 16_000)); // past one cut-short wait
          m.preempt();
        },
      });
      expect(messages[0]).toMatchObject({ exitCode: 0, preempted: true });
      expect(run.stdout).not.toMatch(/watching for preemption failed/);
      // The 16 s wait comes on top of what every test here spends on the container (create, start,
      // stop, remove: on the vfs driver under a full suite's load, up to 25 s for a create alone), so
      // this one gets the shared 30 s plus its wait and a margin; it had run out at 30 s in CI.
    }, 90_000);

    it('sends SIGKILL after the grace to a preempted task that ignores SIGTERM', async () => {
      const script = 'trap "" TERM; echo working; while true; do sleep 0.1; done';
      const { messages, deletes } = await runAgent(task(script), {
        during: async (m) => {
          await taskSaid('working');
          m.preempt();
        },
        env: { AGENT_STOP_GRACE_SECONDS: '1' },
      });
      expect(messages[0]).toMatchObject({ exitCode: 137, preempted: true });
      expectOneDelete(deletes);
    });

    it('still reports, and says why, when its Compute client finds no credentials; nothing crashes it', async () => {
      // Off Google's hardware, with detection off, Application Default Credentials find nothing: the
      // Compute client's stub fails, which gax would leave as a rejection nobody awaits.
      const { run, messages, deletes } = await runAgent(task('echo fine'), {
        env: { METADATA_SERVER_DETECTION: 'none' },
      });
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ exitCode: 0 });
      expect(deletes).toHaveLength(0);
      expect(run.stdout).toMatch(
        /"message":"could not delete this instance","error":"Could not load the default credentials/,
      );
      expect(run.stdout).toMatch(/"message":"agent done"/);
      expect(run.stderr).not.toMatch(/Unhandled|at GoogleAuth/);
      expect(run.code).toBe(0);
    });

    it('rides out a metadata server that fails for a while', async () => {
      const { run, messages, deletes } = await runAgent(task('echo fine'), {
        before: (m) => {
          m.failNext('*', 12); // beyond gcp-metadata's own retries: the reads of the identity and the task
          m.failNext('instance/preempted', 2);
        },
      });
      expect(run.stdout).toMatch(/from the metadata server failed; trying again/);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ exitCode: 0 });
      expectOneDelete(deletes);
    });
  });
});

/** Waits until the task's container (labelled with its job by the agent) has written `text`: its trap is set. */
async function taskSaid(text: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const { stdout: ids } = await docker(['ps', '-q', '--filter', `label=pipeline-job-id=${JOB}`]);
    const id = ids.trim().split('\n')[0];
    if (id !== '' && (await docker(['logs', id]).catch(() => ({ stdout: '' }))).stdout.includes(text)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the task never said ${text}`);
}

describeWithEmulators(['pubsub'], 'the VM agent with a GPU (Docker Engine API double: no GPU here)', () => {
  it('gives the task the devices, driver mounts and library path of COS', async () => {
    const [docker, gcs, compute, emulator] = await Promise.all([
      startFakeDocker(),
      startFakeGcs(),
      startFakeCompute(),
      startEmulator('pubsub'),
    ]);
    const gpuImage = 'us-docker.pkg.dev/p/r/infer:1';
    docker.script(gpuImage, { exitCode: 0 });
    const metadata = await startFakeMetadata({
      'project/project-id': PROJECT,
      'instance/name': INSTANCE,
      'instance/zone': `projects/123456/zones/${ZONE}`,
      'instance/attributes/pipeline-task': JSON.stringify({
        jobId: JOB,
        attempt: 1,
        image: gpuImage,
        args: [],
        env: { LD_LIBRARY_PATH: '/opt/lib' },
        logsUri: 'gs://out/x/logs/attempt-1.log',
        timeoutSeconds: 60,
        gpus: 2,
      }),
      'instance/attributes/pipeline-job-id': JOB,
      'instance/attributes/pipeline-attempt': '1',
    });
    try {
      const run = await runGuarded(AGENT_BIN, [], {
        GCE_METADATA_HOST: metadata.host,
        METADATA_SERVER_DETECTION: 'assume-present',
        DOCKER_HOST: `unix://${docker.socketPath}`,
        STORAGE_EMULATOR_HOST: gcs.url,
        PUBSUB_EMULATOR_HOST: emulator.host,
        COMPUTE_API_ENDPOINT: compute.endpoint,
      });
      expect(run.stdout).toMatch(/agent done/);
      const create = docker.requests.find((r) => r.path === '/containers/create')!.body as {
        Env: string[];
        HostConfig: { Binds: string[]; Devices: { PathOnHost: string; PathInContainer: string }[] };
      };
      expect(create.HostConfig.Devices.map((d) => d.PathOnHost)).toEqual([
        '/dev/nvidia0',
        '/dev/nvidia1',
        '/dev/nvidia-uvm',
        '/dev/nvidiactl',
      ]);
      expect(create.HostConfig.Binds).toEqual([
        '/var/lib/pipeline/shared:/tmp/worker',
        '/var/lib/nvidia/lib64:/usr/local/nvidia/lib64:ro',
        '/var/lib/nvidia/bin:/usr/local/nvidia/bin:ro',
      ]);
      // The driver's libraries first, then the task's own path.
      expect(create.Env).toContain('LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/opt/lib');
    } finally {
      await Promise.all([metadata.close(), docker.close(), gcs.close(), compute.close(), emulator.stop()]);
    }
  });
});
