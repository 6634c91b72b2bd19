// The cloud topology in a box: the whole Google Cloud side of the pipeline on loopback, with the real
// images. What runs for real: the Pub/Sub and Firestore emulators, the dispatcher's image as a
// container (with the environment terraform gives it on Cloud Run), the worker image as Cloud Run
// tasks and as the VMs' `logreg` task, the agent image as the VM agent, vm-startup.sh in a COS
// stand-in, the task images, a registry that takes only the VM's token, and the Docker engine. What
// is a double: Cloud Storage (fake-gcs.ts, which publishes OBJECT_FINALIZE notifications as a
// bucket's notification configuration does), the Run and Compute APIs (fake-run.ts, fake-compute.ts,
// whose executions and instances run-host.ts and vm-host.ts turn into containers), the metadata
// servers (fake-metadata.ts), and Cloud Scheduler (a timer posting /reconcile and /reap).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { PubSub, type Topic } from '@google-cloud/pubsub';
import { parseJobEvent, type Job, type JobEvent } from '@pipeline/core';
import { docker, ensureBusyboxImage } from '../support/docker-engine.ts';
import { startEmulator, freePort, type Emulator } from '../support/emulators.ts';
import { startFakeGcs, type FakeGcs, type ObjectResource } from '../support/fake-gcs.ts';
import { startFakeRun, type FakeRun } from '../support/fake-run.ts';
import { startFakeCompute, type FakeCompute } from '../support/fake-compute.ts';
import { startFakeMetadata, type FakeMetadata } from '../support/fake-metadata.ts';
import { startRegistry, type Registry } from '../support/registry.ts';
import {
  buildAgentImage,
  buildDispatcherImage,
  buildWorkerImage,
  ensureCosStandInImage,
} from '../support/images.ts';
import { parseTerraform } from '../infra/terraform-model.ts';
import { RunHost } from './run-host.ts';
import { VmHost } from './vm-host.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const BOX_PROJECT = 'box-project';
export const INPUT_BUCKET = 'box-input';
export const OUTPUT_BUCKET = 'box-output';
const SHARED_BUCKET = 'box-shared';
const REGION = 'us-central1';
const ZONE = 'us-central1-a';
/** The token of the box's service accounts (the registry takes it; the doubles take any). */
const TOKEN = `ya29.box-${randomBytes(6).toString('hex')}`;
/** Cloud Scheduler's passes, faster than the shipped every minute so that the suite is short. */
const RECONCILE_EVERY_MS = 10_000;
const REAP_EVERY_MS = 30_000;

export interface CloudBoxOptions {
  /** Whether Compute preempts this spot instance once its task runs. */
  preempt?: (instance: Record<string, unknown>) => boolean;
  /**
   * Rules put before the shipped pipeline.config.json's, in the dispatcher's config file (mounted
   * where its image has the shipped one), as a user who edits that file deploys them.
   */
  rules?: Record<string, unknown>[];
}

export interface BoxImages {
  dispatcher: string;
  worker: string;
  agent: string;
  busybox: string;
  cos: string;
}

/** The images the box runs, built (or found) on the engine. */
export async function boxImages(): Promise<BoxImages> {
  const [dispatcher, worker, agent, busybox, cos] = await Promise.all([
    buildDispatcherImage(),
    buildWorkerImage(),
    buildAgentImage(),
    ensureBusyboxImage(),
    ensureCosStandInImage(),
  ]);
  return { dispatcher, worker, agent, busybox, cos };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CloudBox {
  readonly dir: string;
  readonly label: string;
  url = '';
  /** The registry's names of the worker image (the job's, and `logreg` on a VM), the VM agent's and a busybox task's. */
  workerImage = '';
  agentImage = '';
  taskImage = '';
  gcs!: FakeGcs;
  run!: FakeRun;
  compute!: FakeCompute;
  runHost!: RunHost;
  vmHost!: VmHost;
  private registry!: Registry;
  private pubsubEmulator!: Emulator;
  private firestoreEmulator!: Emulator;
  private metadata!: FakeMetadata;
  private pubsub!: PubSub;
  private uploads!: Topic;
  /**
   * What the box's consumer of the job-events topic received: each event with the message's
   * attributes (what a subscription's filter reads), and what it could not parse.
   */
  readonly jobEvents: {
    received: { event: JobEvent; attributes: Record<string, string> }[];
    malformed: string[];
  } = { received: [], malformed: [] };
  private readonly notifications = new Set<Promise<unknown>>();
  private readonly notifyFailures: string[] = [];
  private dispatcher = '';
  private scheduler: NodeJS.Timeout[] = [];
  private containersBefore = new Set<string>();
  private readonly options: CloudBoxOptions;

  private constructor(options: CloudBoxOptions) {
    this.options = options;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cloud-box-'));
    this.label = path.basename(this.dir);
  }

  /** host:port of the box's metadata server (Cloud Run's, and a user's credentials): GCE_METADATA_HOST. */
  get metadataHost(): string {
    return this.metadata.host;
  }

  static async start(images: BoxImages, options: CloudBoxOptions = {}): Promise<CloudBox> {
    const box = new CloudBox(options);
    try {
      await box.startAll(images);
    } catch (err) {
      await box.stop().catch(() => undefined);
      throw err;
    }
    return box;
  }

  private async startAll(images: BoxImages): Promise<void> {
    this.containersBefore = new Set(await allContainers());
    [this.registry, this.pubsubEmulator, this.firestoreEmulator] = await Promise.all([
      startRegistry(TOKEN),
      startEmulator('pubsub'),
      startEmulator('firestore'),
    ]);
    [this.workerImage, this.agentImage, this.taskImage] = await Promise.all([
      this.registry.push(images.worker, 'pipeline/worker:box'),
      this.registry.push(images.agent, 'pipeline/agent:box'),
      this.registry.push(images.busybox, 'box/task:1'),
    ]);
    // Cloud Run's metadata server, for the dispatcher and the worker's tasks: the project and a token.
    this.metadata = await startFakeMetadata(
      {
        'project/project-id': BOX_PROJECT,
        'project/numeric-project-id': '123456789012',
        'instance/region': `projects/123456789012/regions/${REGION}`,
        'instance/service-accounts/default/email': `dispatcher@${BOX_PROJECT}.iam.gserviceaccount.com`,
      },
      { token: TOKEN },
    );
    this.pubsub = new PubSub({ projectId: BOX_PROJECT, apiEndpoint: this.pubsubEmulator.host });
    this.gcs = await startFakeGcs({ onFinalized: (object, replaced) => this.notify(object, replaced) });
    const toBox = {
      STORAGE_EMULATOR_HOST: this.gcs.url,
      PUBSUB_EMULATOR_HOST: this.pubsubEmulator.host,
    };
    this.run = await startFakeRun({
      jobImage: this.workerImage,
      onExecutionStarted: (execution) => this.runHost.start(execution),
      onExecutionEnded: (execution) => this.runHost.ended(execution),
    });
    this.runHost = new RunHost({
      image: this.workerImage,
      dockerConfig: this.registry.dockerConfig,
      // The job's env as run.tf defines it (COMPLETIONS_TOPIC), then Cloud Run's metadata server and the box.
      env: { COMPLETIONS_TOPIC: 'completions', GCE_METADATA_HOST: this.metadata.host, ...toBox },
      label: this.label,
      logDir: path.join(this.dir, 'run'),
      settleTask: (execution, index, outcome) => this.run.settleTask(execution, index, outcome),
    });
    this.compute = await startFakeCompute({ onInstanceCreated: (instance) => this.vmHost.boot(instance) });
    this.vmHost = new VmHost({
      compute: this.compute,
      cosImage: images.cos,
      token: TOKEN,
      project: BOX_PROJECT,
      env: {
        ...toBox,
        COMPUTE_API_ENDPOINT: this.compute.endpoint,
        PIPELINE_TOKEN_REGISTRIES: this.registry.host,
      },
      label: this.label,
      dir: path.join(this.dir, 'vms'),
      preempt: this.options.preempt,
    });
    await this.makeTopics();
    await this.startDispatcher(images.dispatcher);
    this.scheduler = [
      setInterval(() => void this.post('/reconcile').catch(() => undefined), RECONCILE_EVERY_MS),
      setInterval(() => void this.post('/reap').catch(() => undefined), REAP_EVERY_MS),
    ];
  }

  /** The shipped routing config with `rules` first, as a file for the dispatcher's image. */
  private routingConfig(rules: Record<string, unknown>[]): { host: string; container: string } {
    const shipped = JSON.parse(fs.readFileSync(path.join(ROOT, 'pipeline.config.json'), 'utf8')) as {
      rules: unknown[];
    };
    const host = path.join(this.dir, 'pipeline.config.json');
    fs.writeFileSync(host, JSON.stringify({ ...shipped, rules: [...rules, ...shipped.rules] }, null, 2));
    fs.chmodSync(host, 0o644);
    return { host, container: '/app/pipeline.config.json' };
  }

  /** The topics and subscriptions of terraform/pubsub.tf; the push ones once the dispatcher listens. */
  private async makeTopics(): Promise<void> {
    const [[uploads], , [deadLetter], [jobEvents]] = await Promise.all([
      this.pubsub.createTopic('uploads'),
      this.pubsub.createTopic('completions'),
      this.pubsub.createTopic('dead-letter'),
      this.pubsub.createTopic('job-events'),
    ]);
    this.uploads = uploads;
    await deadLetter.createSubscription('dead-letter', { ackDeadlineSeconds: 60 });
    // A consumer of every job event. The README's consumers filter on `attributes.state`; this
    // google-cloud-cli's emulator (528) ignores subscription filters (they came with 555:
    // https://cloud.google.com/sdk/docs/release-notes, 2026-02-03), so the suite checks the
    // attributes a filter would read instead.
    const [all] = await jobEvents.createSubscription('box-all-events');
    all.on('message', (message: { data: Buffer; attributes: Record<string, string>; ack(): void }) => {
      message.ack();
      let data: unknown;
      try {
        data = JSON.parse(message.data.toString('utf8'));
      } catch {
        data = undefined;
      }
      const parsed = parseJobEvent(data);
      if (parsed.kind === 'event')
        this.jobEvents.received.push({ event: parsed.event, attributes: { ...message.attributes } });
      else this.jobEvents.malformed.push(parsed.reason);
    });
  }

  private async pushSubscriptions(): Promise<void> {
    // As pubsub.tf makes them: the push ack deadline, dead-lettering after 10 attempts, 10 s backoff.
    const policy = (endpoint: string) => ({
      pushConfig: { pushEndpoint: `${this.url}${endpoint}` },
      ackDeadlineSeconds: 300,
      deadLetterPolicy: {
        deadLetterTopic: `projects/${BOX_PROJECT}/topics/dead-letter`,
        maxDeliveryAttempts: 10,
      },
      retryPolicy: { minimumBackoff: { seconds: 10 }, maximumBackoff: { seconds: 600 } },
    });
    await this.pubsub.topic('uploads').createSubscription('uploads-push', policy('/pubsub/push'));
    await this.pubsub
      .topic('completions')
      .createSubscription('completions-push', policy('/pubsub/completions'));
  }

  /** The dispatcher's environment: every variable terraform gives it (run.tf), with the box's values. */
  async dispatcherEnv(port: number): Promise<Record<string, string>> {
    const tf = await parseTerraform();
    const wanted = Object.keys(tf.locals.dispatcher_env as Record<string, string>);
    const sa = (name: string) => `${name}@${BOX_PROJECT}.iam.gserviceaccount.com`;
    const values: Record<string, string> = {
      GOOGLE_CLOUD_PROJECT: BOX_PROJECT,
      REGION,
      ZONE,
      VM_ZONES: ZONE,
      OUTPUT_BUCKET,
      WORKER_JOB: 'pipeline-worker',
      // As terraform defines the worker job by default (variables.tf: worker_cpu, worker_memory and
      // worker_timeout_seconds).
      WORKER_JOB_CPU: '2',
      WORKER_JOB_MEMORY: '4Gi',
      WORKER_JOB_TIMEOUT: '3600s',
      WORKER_IMAGE: this.workerImage,
      AGENT_IMAGE: this.agentImage,
      WORKER_SERVICE_ACCOUNT: sa('pipeline-worker'),
      COMPLETIONS_TOPIC: 'completions',
      JOB_EVENTS_TOPIC: 'job-events',
      PUSH_AUDIENCE: `http://127.0.0.1:${port}`,
      PUSH_SERVICE_ACCOUNT: sa('pipeline-push'),
      JOBS_CALLERS: sa('pipeline-push'),
      JOBS_ACCEPT_GCLOUD_TOKENS: 'false',
      VM_MACHINE_TYPE: 'e2-standard-2',
      VM_SPOT: 'false',
      VM_LABEL: 'box',
      VM_NETWORK: `projects/${BOX_PROJECT}/global/networks/pipeline`,
      VM_SUBNETWORK: `projects/${BOX_PROJECT}/regions/${REGION}/subnetworks/pipeline-vms`,
      VM_EXTERNAL_IP: 'false',
      VM_IMAGE_FAMILY: 'cos-stable',
      VM_IMAGE_PROJECT: 'cos-cloud',
      SHARED_URI: `gs://${SHARED_BUCKET}/`,
      LEDGER_COLLECTION: 'jobs',
      DEAD_LETTER_SUBSCRIPTION: 'dead-letter',
      UPLOADS_SUBSCRIPTION: 'uploads-push',
      UPLOADS_TOPIC: 'uploads',
      COMPLETIONS_SUBSCRIPTION: 'completions-push',
    };
    const missing = wanted.filter((name) => values[name] === undefined);
    if (missing.length > 0)
      throw new Error(`terraform gives the dispatcher ${missing.join(', ')}, which the box does not set`);
    return {
      ...Object.fromEntries(wanted.map((name) => [name, values[name]!])),
      // Where the box differs from Cloud Run: loopback, the emulators and doubles, and no push auth
      // (the Pub/Sub emulator sends no OIDC token). K_SERVICE is not set: with it, PUSH_AUTH=off is refused.
      PORT: String(port),
      HOST: '127.0.0.1',
      PUSH_AUTH: 'off',
      GCE_METADATA_HOST: this.metadata.host,
      FIRESTORE_EMULATOR_HOST: this.firestoreEmulator.host,
      PUBSUB_EMULATOR_HOST: this.pubsubEmulator.host,
      STORAGE_EMULATOR_HOST: this.gcs.url,
      RUN_API_ENDPOINT: this.run.endpoint,
      COMPUTE_API_ENDPOINT: this.compute.endpoint,
    };
  }

  /**
   * Starts the dispatcher's image (stopping one already running) and waits for /healthz. `mounts`
   * put host files over the image's (a test that breaks a contract on purpose).
   */
  async startDispatcher(image: string, mounts: { host: string; container: string }[] = []): Promise<void> {
    await this.stopDispatcher();
    if (this.options.rules !== undefined) mounts = [this.routingConfig(this.options.rules), ...mounts];
    const port = this.url === '' ? await freePort() : Number(new URL(this.url).port);
    const env = await this.dispatcherEnv(port);
    this.dispatcher = `box-dispatcher-${this.label}-${randomBytes(3).toString('hex')}`;
    await docker([
      'run',
      '--detach',
      '--name',
      this.dispatcher,
      '--label',
      `pipeline-box=${this.label}`,
      '--network',
      'host',
      ...mounts.flatMap((m) => ['-v', `${m.host}:${m.container}:ro`]),
      ...Object.entries(env).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
      image,
    ]);
    const firstStart = this.url === '';
    this.url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const healthy = await fetch(`${this.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (healthy) break;
      const state = await docker(['inspect', '--format', '{{.State.Status}}', this.dispatcher]);
      if (state.stdout.trim() !== 'running' || Date.now() > deadline)
        throw new Error(
          `the dispatcher did not start (${state.stdout.trim()}): ${await this.dispatcherLog()}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (firstStart) await this.pushSubscriptions();
  }

  async stopDispatcher(): Promise<void> {
    if (this.dispatcher === '') return;
    fs.appendFileSync(path.join(this.dir, 'dispatcher.log'), await this.dispatcherLog());
    // Cloud Run stops an instance with SIGTERM, and SIGKILL 10 s later.
    await docker(['stop', '--time', '10', this.dispatcher]).catch(() => undefined);
    await docker(['rm', '--force', this.dispatcher]).catch(() => undefined);
    this.dispatcher = '';
  }

  /** The running dispatcher's log (JSON lines, as Cloud Logging gets them). */
  async dispatcherLog(): Promise<string> {
    if (this.dispatcher === '') return '';
    const { stdout, stderr } = await docker(['logs', this.dispatcher]).catch((err: Error) => ({
      stdout: '',
      stderr: err.message,
    }));
    return `${stdout}${stderr}`;
  }

  /** OBJECT_FINALIZE for the input bucket, published to the uploads topic as Cloud Storage publishes it. */
  private notify(object: ObjectResource, replaced?: { generation: string }): void {
    if (object.bucket !== INPUT_BUCKET) return;
    const resource = {
      ...object,
      selfLink: `https://www.googleapis.com/storage/v1/b/${object.bucket}/o/${encodeURIComponent(object.name)}`,
      mediaLink: `https://storage.googleapis.com/download/storage/v1/b/${object.bucket}/o/${encodeURIComponent(object.name)}?generation=${object.generation}&alt=media`,
      storageClass: 'STANDARD',
      timeStorageClassUpdated: object.timeCreated,
      etag: Buffer.from(object.generation).toString('base64'),
    };
    const published = this.uploads
      .publishMessage({
        data: Buffer.from(JSON.stringify(resource)),
        attributes: {
          bucketId: object.bucket,
          eventTime: object.timeCreated,
          eventType: 'OBJECT_FINALIZE',
          notificationConfig: `projects/_/buckets/${object.bucket}/notificationConfigs/1`,
          objectGeneration: object.generation,
          objectId: object.name,
          payloadFormat: 'JSON_API_V1',
          ...(replaced === undefined ? {} : { overwroteGeneration: replaced.generation }),
        },
      })
      .catch((err: Error) => this.notifyFailures.push(`${object.name}: ${err.message}`));
    this.notifications.add(published);
    void published.finally(() => this.notifications.delete(published));
  }

  /** An HTTP call to the dispatcher; the parsed JSON answer (or text), and the status. */
  async api(method: string, route: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${this.url}${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, body: parsed };
  }

  private async post(route: string): Promise<void> {
    await this.api('POST', route);
  }

  async job(id: string): Promise<Job> {
    const { status, body } = await this.api('GET', `/jobs/${encodeURIComponent(id)}`);
    if (status !== 200) throw new Error(`GET /jobs/${id} answered ${status}: ${JSON.stringify(body)}`);
    return body as Job;
  }

  /** Waits for the job to reach a final state; the job then. */
  async waitForEnd(id: string, timeoutMs = 300_000): Promise<Job> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.job(id).catch(() => undefined);
      if (job !== undefined && ['SUCCEEDED', 'FAILED', 'CANCELLED', 'IGNORED'].includes(job.state))
        return job;
      if (Date.now() > deadline)
        throw new Error(
          `job ${id} did not end within ${timeoutMs / 1000} s: ${JSON.stringify(job?.history)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** The `pipeline` command, run as a user runs it on their machine, against the box. */
  cli(args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [path.join(ROOT, 'packages/cli/bin/pipeline.js'), ...args],
        {
          cwd: ROOT,
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            PIPELINE_URL: this.url,
            // The user's Application Default Credentials, and the box's Storage.
            GCE_METADATA_HOST: this.metadata.host,
            STORAGE_EMULATOR_HOST: this.gcs.url,
            NO_COLOR: '1',
            // As in every test: the command may talk to loopback only.
            NODE_OPTIONS: `--import ${path.join(ROOT, 'test/support/loopback-only.ts')}`,
          },
          timeout: 120_000,
        },
        (error, stdout, stderr) =>
          resolve({
            code: error === null ? 0 : Number(error.code ?? 1),
            stdout: String(stdout),
            stderr: String(stderr),
          }),
      );
    });
  }

  /** Waits until every notification was published and every execution and VM ended. */
  async settled(): Promise<string[]> {
    while (this.notifications.size > 0) await Promise.all([...this.notifications]);
    const [run, vms] = await Promise.all([this.runHost.settled(), this.vmHost.settled()]);
    return [...this.notifyFailures, ...run, ...vms];
  }

  /** What is still running that the box started: containers, instances, executions. */
  async leftovers(): Promise<{ containers: string[]; instances: string[]; executions: number }> {
    // The dispatcher is a service: it runs until the box stops.
    const containers = (await allContainers()).filter(
      (line) => !this.containersBefore.has(line) && !line.startsWith(`${this.dispatcher} `),
    );
    return { containers, instances: [...this.compute.instances.keys()], executions: this.run.running() };
  }

  async stop(): Promise<void> {
    for (const timer of this.scheduler) clearInterval(timer);
    await this.stopDispatcher().catch(() => undefined);
    // The VMs' agents and tasks are the agent's containers, not the box's: powered off with their VM.
    await this.vmHost?.powerOffAll().catch(() => undefined);
    await Promise.race([
      Promise.all([this.vmHost?.settled(), this.runHost?.settled()]),
      new Promise((resolve) => setTimeout(resolve, 30_000).unref()),
    ]);
    const { stdout } = await docker([
      'ps',
      '--all',
      '--quiet',
      '--filter',
      `label=pipeline-box=${this.label}`,
    ]).catch(() => ({ stdout: '' }));
    const ids = stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['rm', '--force', ...ids]).catch(() => undefined);
    await this.pubsub?.close().catch(() => undefined);
    await Promise.all([
      this.registry?.stop(),
      this.pubsubEmulator?.stop(),
      this.firestoreEmulator?.stop(),
      this.metadata?.close(),
      this.gcs?.close(),
      this.run?.close(),
      this.compute?.close(),
    ]);
    await docker(
      ['image', 'rm', '--force', this.workerImage, this.agentImage, this.taskImage].filter(Boolean),
    ).catch(() => undefined);
    if (process.env.KEEP_BOX === undefined) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Every container on the engine, as "NAME IMAGE". */
async function allContainers(): Promise<string[]> {
  const { stdout } = await docker(['ps', '--all', '--format', '{{.Names}} {{.Image}}']);
  return stdout.split('\n').filter(Boolean);
}
