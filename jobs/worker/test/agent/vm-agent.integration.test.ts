// The VM agent as it runs on a VM, `pipeline-worker agent` in a child process, against loopback
// doubles that speak the real protocols: the metadata server (gcp-metadata via GCE_METADATA_HOST),
// the Docker Engine API on a unix socket (dockerode via DOCKER_HOST), the Cloud Storage JSON API, the
// Pub/Sub emulator for the completions topic, and a Compute API double that must see the self-delete.
import { afterAll, beforeAll, beforeEach, afterEach, expect, it } from 'vitest';
import { PubSub, type Subscription } from '@google-cloud/pubsub';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { startFakeMetadata, type FakeMetadata } from '../../../../test/support/fake-metadata.ts';
import {
  startFakeDocker,
  type FakeDocker,
  type ImageBehaviour,
} from '../../../../test/support/fake-docker.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { runWorker } from '../../../../test/support/run-worker.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PROJECT = 'test-project';
const ZONE = 'us-central1-a';
const INSTANCE = 'pipeline-abababababababababab-a1';
const JOB = 'ab'.repeat(16);
const IMAGE = 'us-central1-docker.pkg.dev/test-project/pipeline/task:1';
const HOSTILE = `it's "quoted" $(touch /tmp/x) \`id\`\nsecond line ünïcødé`;

describeWithEmulators(['pubsub'], 'the VM agent against loopback doubles', () => {
  let pubsubEmulator: Emulator;
  let pubsub: PubSub;
  let completions: Subscription;
  let metadata: FakeMetadata;
  let docker: FakeDocker;
  let gcs: FakeGcs;
  let compute: FakeCompute;

  beforeAll(async () => {
    pubsubEmulator = await startEmulator('pubsub');
    pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: pubsubEmulator.host });
    const [topic] = await pubsub.createTopic('completions');
    [completions] = await topic.createSubscription('completions-pull');
  }, 60_000);
  afterAll(async () => {
    await pubsub?.close();
    await pubsubEmulator?.stop();
  });

  beforeEach(async () => {
    [docker, gcs, compute] = await Promise.all([startFakeDocker(), startFakeGcs(), startFakeCompute()]);
  });
  afterEach(async () => {
    await Promise.all([metadata?.close(), docker.close(), gcs.close(), compute.close()]);
  });

  function task(changes: Record<string, unknown> = {}): string {
    return JSON.stringify({
      jobId: JOB,
      attempt: 1,
      image: IMAGE,
      args: ['--input', 'gs://in/data.csv'],
      env: { INPUT_URI: 'gs://in/data.csv', JOB_ID: JOB, HOSTILE },
      logsUri: 'gs://out/data.csv/logs/attempt-1.log',
      timeoutSeconds: 60,
      ...changes,
    });
  }

  async function runAgent(
    pipelineTask: string,
    behaviour: ImageBehaviour,
    during?: () => Promise<void>,
    sharedDir?: string,
  ) {
    docker.script(IMAGE, behaviour);
    metadata = await startFakeMetadata({
      'project/project-id': PROJECT,
      'instance/name': INSTANCE,
      'instance/zone': `projects/123456/zones/${ZONE}`,
      'instance/attributes/pipeline-task': pipelineTask,
      'instance/attributes/pipeline-job-id': JOB,
      'instance/attributes/pipeline-attempt': '1',
      'instance/attributes/pipeline-completions-topic': 'completions',
    });
    const running = runWorker(['agent'], {
      GCE_METADATA_HOST: metadata.host,
      METADATA_SERVER_DETECTION: 'assume-present',
      DOCKER_HOST: `unix://${docker.socketPath}`,
      STORAGE_EMULATOR_HOST: gcs.url,
      PUBSUB_EMULATOR_HOST: pubsubEmulator.host,
      COMPUTE_API_ENDPOINT: compute.endpoint,
      ...(sharedDir === undefined ? {} : { AGENT_SHARED_DIR: sharedDir }),
    });
    await during?.();
    const run = await running;
    const messages = await pullAll();
    const deletes = compute.requests.filter((r) => r.method === 'DELETE');
    return { run, messages, deletes };
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

  it('runs the container with its env byte-exact, uploads the log, reports exit 0 once, deletes the VM', async () => {
    const { run, messages, deletes } = await runAgent(task(), {
      output: [
        { stream: 'stdout', data: 'reading\n' },
        { stream: 'stderr', data: 'a warning\n', delayMs: 20 },
      ],
      exitCode: 0,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const create = docker.requests.find((r) => r.path === '/containers/create')!;
    const body = create.body as {
      Env: string[];
      Cmd: string[];
      Image: string;
      HostConfig: { Binds: string[] };
    };
    expect(body.Image).toBe(IMAGE);
    expect(body.Cmd).toEqual(['--input', 'gs://in/data.csv']);
    expect(body.Env).toContain(`HOSTILE=${HOSTILE}`);
    expect(body.HostConfig.Binds).toEqual(['/tmp/worker:/tmp/worker']);
    const pull = docker.requests.find((r) => r.path === '/images/create')!;
    expect(pull.registryAuth).toMatchObject({ username: 'oauth2accesstoken', password: 'metadata-token' });
    expect(gcs.get('out', 'data.csv/logs/attempt-1.log')?.body.toString()).toBe('reading\na warning\n');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      jobId: JOB,
      attempt: 1,
      exitCode: 0,
      preempted: false,
      instance: INSTANCE,
    });
    expectOneDelete(deletes);
  });

  it('copies the shared files into the folder it mounts into the task', async () => {
    gcs.put('shared-bucket', 'certs/ca.pem', '-----BEGIN CERTIFICATE-----\n');
    gcs.put('shared-bucket', 'certs/client/key.pem', 'secret\n');
    gcs.put('shared-bucket', 'other/ignored.txt', 'no');
    const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-shared-'));
    const { messages } = await runAgent(
      task({ sharedUri: 'gs://shared-bucket/certs/' }),
      { exitCode: 0 },
      undefined,
      shared,
    );
    expect(messages[0]).toMatchObject({ exitCode: 0 });
    expect(fs.readFileSync(path.join(shared, 'ca.pem'), 'utf8')).toBe('-----BEGIN CERTIFICATE-----\n');
    expect(fs.readFileSync(path.join(shared, 'client/key.pem'), 'utf8')).toBe('secret\n');
    expect(fs.existsSync(path.join(shared, 'ignored.txt'))).toBe(false);
    const create = docker.requests.find((r) => r.path === '/containers/create')!;
    expect((create.body as { HostConfig: { Binds: string[] } }).HostConfig.Binds).toEqual([
      `${shared}:${shared}`,
    ]);
    fs.rmSync(shared, { recursive: true, force: true });
  });

  it.each([1, 137])(
    'reports a task that exits %i as failed, with the tail of its output',
    async (exitCode) => {
      const { messages, deletes } = await runAgent(task(), {
        output: [{ stream: 'stderr', data: 'out of memory\n' }],
        exitCode,
      });
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ exitCode, error: 'out of memory' });
      expectOneDelete(deletes);
    },
  );

  it('reports an image it may not pull, and still deletes the VM', async () => {
    const { messages, deletes } = await runAgent(task(), { denyPull: { via: 'http' } });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ exitCode: 125 });
    expect(String(messages[0].error)).toMatch(/pull access denied/);
    expect(docker.requests.some((r) => r.path === '/containers/create')).toBe(false);
    expectOneDelete(deletes);
  });

  it('reports bad task JSON for the job named in metadata, and still deletes the VM', async () => {
    const { messages, deletes } = await runAgent('{"jobId": 42', {});
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      jobId: JOB,
      attempt: 1,
      exitCode: 125,
      error: 'bad task: pipeline-task is not JSON',
    });
    expectOneDelete(deletes);
  });

  it('stops the container when the VM is preempted and says so', async () => {
    const { messages, deletes } = await runAgent(
      task(),
      { output: [{ stream: 'stdout', data: 'working\n' }], hangUntilKilled: true },
      async () => {
        for (let i = 0; i < 200 && ![...docker.containers.values()].some((c) => c.started); i++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        metadata.preempt();
      },
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ exitCode: 137, preempted: true, error: 'the VM was preempted' });
    expectOneDelete(deletes);
  });
});
