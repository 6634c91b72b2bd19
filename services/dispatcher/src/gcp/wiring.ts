// The dispatcher on Google Cloud, assembled from its config: Firestore ledger, Cloud Storage, the
// Cloud Run Jobs and Compute Engine launchers, and OIDC checks on every door. Nothing heavy is loaded
// here: each Google library is imported on first use, so the service answers /healthz fast after a
// cold start (Cloud Run scales to zero).
import type { Firestore } from '@google-cloud/firestore';
import type { ClientConfig } from '@google-cloud/pubsub';
import type { AuthClient } from 'google-auth-library';
import type {
  Backfill,
  BackfillStore,
  CapacityRecord,
  Job,
  JobEvent,
  JobPage,
  JobState,
  LaunchRequest,
  Launcher,
  Ledger,
} from '@pipeline/core';
import type { Logger } from 'pino';
import { buildApp } from '../app.ts';
import type { CloudConfig } from '../config.ts';
import { Backfiller } from '../backfill.ts';
import { Dispatcher } from '../dispatcher.ts';
import type { Reconciler } from '../reconciler.ts';
import { loadRoutingConfig } from '../routing-config.ts';
import {
  closeGoogleClients,
  CredentialsError,
  executionsClient,
  instancesClient,
  jobsClient,
  tasksClient,
  zoneOperationsClient,
} from './clients.ts';
import { ComputeEngineLauncher } from './compute-launcher.ts';
import { PubSubJobEvents } from './job-events-publisher.ts';
import type { PubSubDeadLetterQueue, PubSubDeadLetterQueueOptions } from './dead-letters.ts';
import { ComputeReaper } from './reaper.ts';
import { GcsBlobStore } from './gcs-blob-store.ts';
import {
  GCLOUD_CLIENT_AUDIENCE,
  googleCertificates,
  requireGoogleIdentity,
  type CertificateSource,
} from './push-auth.ts';
import { CloudRunJobLauncher } from './run-launcher.ts';
import { cloudCapacity } from './cloud-capacity.ts';
import { closeRegionsClients, RegionQuotaReader, regionsClient } from './region-quotas.ts';

export interface CloudOverrides {
  /** Credentials for the Run and Compute clients (tests: a fixed token). */
  authClient?: AuthClient;
  /** Where OIDC signing keys come from (tests: their own key). */
  certificates?: CertificateSource;
  /** A Firestore client (tests: one pointed at the emulator). */
  firestore?: () => Promise<Firestore>;
  /** Settings of the job-events publisher's Pub/Sub client (tests: the emulator's apiEndpoint). */
  pubsub?: ClientConfig;
}

export function buildCloudDispatcher(config: CloudConfig, logger: Logger, overrides: CloudOverrides = {}) {
  const routing = loadRoutingConfig(config.pipelineConfig);
  // One Firestore client for the ledger and the backfill records, made on first use.
  let firestoreClient: Promise<Firestore> | undefined;
  const firestore = () => {
    firestoreClient ??= (async () =>
      (await overrides.firestore?.()) ?? (await cloudFirestore(config.project)))().catch((err: unknown) => {
      firestoreClient = undefined; // try again next time
      throw err;
    });
    return firestoreClient;
  };
  const ledger = new LazyLedger(async () => {
    const { FirestoreLedger } = await import('./firestore-ledger.ts');
    return new FirestoreLedger({ firestore: await firestore(), collection: config.ledgerCollection });
  });
  const run = { endpoint: config.runApiEndpoint, authClient: overrides.authClient };
  const compute = { endpoint: config.computeApiEndpoint, authClient: overrides.authClient };
  const vm = new ComputeEngineLauncher({
    project: config.project,
    zone: config.zone,
    zones: config.vm.zones,
    image: config.workerImage,
    agentImage: config.agentImage,
    serviceAccount: config.workerServiceAccount,
    defaultMachineType: config.vm.machineType,
    bootImageFamily: config.vm.imageFamily,
    bootImageProject: config.vm.imageProject,
    network: config.vm.network === 'default' ? undefined : config.vm.network,
    subnetwork: config.vm.subnetwork,
    externalIp: config.vm.externalIp,
    timeoutMarginSeconds: config.vm.timeoutMarginSeconds,
    pipelineLabel: config.vm.label,
    // One wait (up to about 2 minutes) keeps the push answer inside its ack deadline; an insert still
    // running then is retried on the redelivery, which finds the instance (409) and is done.
    maxOperationWaits: 1,
    completionsTopic: config.completionsTopic,
    sharedUri: config.sharedUri,
    instances: () => instancesClient(compute),
    operations: () => zoneOperationsClient(compute),
  });
  const launchers = {
    'cloud-run-job': new CloudRunJobLauncher({
      project: config.project,
      region: config.region,
      job: config.workerJob,
      image: config.workerImage,
      client: () => jobsClient(run),
      executions: () => executionsClient(run),
      tasks: () => tasksClient(run),
    }),
    vm: config.vm.spot ? alwaysSpot(vm) : vm,
  };
  // The region's quotas bound the VMs; read with a short timeout, since a drain waits for them.
  const quotas = new RegionQuotaReader({
    project: config.project,
    region: config.region,
    regions: () => regionsClient(compute),
    readTimeoutMs: 5_000,
  });
  const blobs = new GcsBlobStore();
  // Job state changes to JOB_EVENTS_TOPIC, through the ledger's outbox (event-outbox.ts).
  const events =
    config.jobEventsTopic === undefined
      ? undefined
      : new PubSubJobEvents({
          project: config.project,
          topic: config.jobEventsTopic,
          clientConfig: overrides.pubsub,
        });
  const dispatcher = new Dispatcher({
    ledger,
    blobs,
    launchers,
    routing,
    ...(config.cloudRunJob === undefined ? {} : { cloudRunJob: config.cloudRunJob }),
    outputBucket: config.outputBucket,
    logger,
    leaseMs: config.leaseMs,
    capacity: cloudCapacity(config, quotas),
    events,
  });
  // Every writer uses the dispatcher's ledger, which stores job events with the changes they come from.
  const jobs = dispatcher.ports.ledger;
  // Beside the dispatcher, on the same ledger, platforms and settings; its module loads on the first
  // POST /reconcile (Cloud Scheduler's), not at start: a cold start serves Pub/Sub.
  let reconciling: Promise<Reconciler> | undefined;
  const reconciler = {
    async pass() {
      reconciling ??= import('../reconciler.ts').then(
        ({ Reconciler }) =>
          new Reconciler(
            {
              ledger: jobs,
              blobs,
              launchers,
              outputBucket: config.outputBucket,
              logger,
              settings: dispatcher.settings,
            },
            dispatcher,
          ),
      );
      return (await reconciling).pass();
    },
  };
  let auth;
  if (config.pushAuth.enabled) {
    const certificates = overrides.certificates ?? googleCertificates();
    const { audience, pushServiceAccount, jobCallers, acceptGcloudTokens } = config.pushAuth;
    auth = {
      push: requireGoogleIdentity(
        { name: 'push', audience, allowedEmails: [pushServiceAccount], certificates },
        logger,
      ),
      api: requireGoogleIdentity(
        {
          name: 'jobs API',
          // gcloud's audience only when asked for: any token gcloud minted for the person passes it.
          audience: acceptGcloudTokens ? [audience, GCLOUD_CLIENT_AUDIENCE] : audience,
          allowedEmails: jobCallers,
          certificates,
        },
        logger,
      ),
    };
  } else {
    logger.warn('PUSH_AUTH=off: requests are not authenticated (emulators and tests only)');
  }
  // The same project, zone, label and margin as the launcher's VMs.
  const reaper = new ComputeReaper({
    project: config.project,
    zone: config.zone,
    zones: config.vm.zones,
    marginSeconds: config.vm.timeoutMarginSeconds,
    pipelineLabel: config.vm.label,
    instances: () => instancesClient(compute),
    ledger: jobs,
    logger,
  });
  // Its Pub/Sub clients follow PUBSUB_EMULATOR_HOST, as @google-cloud/pubsub's own do.
  const dl = config.deadLetters;
  const deadLetters =
    dl === undefined
      ? undefined
      : new LazyDeadLetters({
          project: config.project,
          subscription: dl.subscription,
          sources: [
            { ...dl.uploads, kind: 'storage-notification' },
            { ...dl.completions, kind: 'completion' },
          ],
          logger,
        });
  // Backfill records beside the ledger's collection; the listing is the input bucket's, through the
  // same Cloud Storage client (the dispatcher's account may list it: terraform/iam.tf).
  const backfills = new Backfiller({
    store: new LazyBackfillStore(async () => {
      const { FirestoreBackfillStore } = await import('./firestore-backfill-store.ts');
      return new FirestoreBackfillStore({
        firestore: await firestore(),
        collection: `${config.ledgerCollection}-backfills`,
      });
    }),
    lister: blobs,
    dispatcher,
    logger,
  });
  const app = buildApp({
    dispatcher,
    reconciler,
    ledger: jobs,
    logger,
    auth,
    reaper,
    deadLetters,
    backfills,
  });
  return {
    app,
    dispatcher,
    reconciler,
    ledger,
    async close() {
      await Promise.all([
        closeGoogleClients(),
        closeRegionsClients(),
        deadLetters?.close(),
        dispatcher.outbox?.close(),
      ]);
    },
  };
}

/**
 * A Firestore client, made only once credentials can be found. One made without them never recovers
 * (it would need a restart) and leaves rejections that nobody awaits; until then the ledger fails
 * with a CredentialsError (500: Pub/Sub delivers again) and the next use tries again. The emulator
 * needs no credentials.
 */
async function cloudFirestore(projectId: string): Promise<Firestore> {
  if (process.env.FIRESTORE_EMULATOR_HOST === undefined) {
    const { GoogleAuth } = await import('google-auth-library');
    try {
      await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/datastore'] }).getClient();
    } catch (err) {
      throw new CredentialsError(
        `the Firestore client has no credentials: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }
  return new (await import('@google-cloud/firestore')).Firestore({ projectId });
}

/** VM_SPOT=true: every VM is spot, whatever its rule says; inspecting and cancelling are unchanged. */
function alwaysSpot(launcher: Launcher): Launcher {
  return {
    launch(request: LaunchRequest) {
      const template = request.job.template;
      return launcher.launch(
        template === undefined
          ? request
          : { ...request, job: { ...request.job, template: { ...template, spot: true } } },
      );
    },
    find: (job) => launcher.find(job),
    inspect: (execution) => launcher.inspect(execution),
    cancel: (execution) => launcher.cancel(execution),
  };
}

/** The dead-letter queue, its module loaded by the first call (GET /deadletters is rare). */
class LazyDeadLetters {
  private queue: Promise<PubSubDeadLetterQueue> | undefined;
  private readonly options: PubSubDeadLetterQueueOptions;

  constructor(options: PubSubDeadLetterQueueOptions) {
    this.options = options;
  }

  private get real(): Promise<PubSubDeadLetterQueue> {
    this.queue ??= import('./dead-letters.ts').then(
      ({ PubSubDeadLetterQueue }) => new PubSubDeadLetterQueue(this.options),
    );
    return this.queue;
  }

  async list(limit: number) {
    return (await this.real).list(limit);
  }
  async replay(id: string) {
    return (await this.real).replay(id);
  }
  async close() {
    if (this.queue !== undefined) await (await this.queue).close();
  }
}

/** A BackfillStore whose adapter (and its client library) is created by the first call. */
class LazyBackfillStore implements BackfillStore {
  private store: Promise<BackfillStore> | undefined;
  private readonly make: () => Promise<BackfillStore>;

  constructor(make: () => Promise<BackfillStore>) {
    this.make = make;
  }

  private get real(): Promise<BackfillStore> {
    this.store ??= this.make().catch((err: unknown) => {
      this.store = undefined; // try again next time
      throw err;
    });
    return this.store;
  }

  async create(backfill: Backfill) {
    return (await this.real).create(backfill);
  }
  async get(id: string) {
    return (await this.real).get(id);
  }
  async update(next: Backfill) {
    return (await this.real).update(next);
  }
  async list(limit: number) {
    return (await this.real).list(limit);
  }
  async running(limit: number) {
    return (await this.real).running(limit);
  }
}

/** A Ledger whose adapter (and its client library) is created by the first call. */
class LazyLedger implements Ledger {
  private ledger: Promise<Ledger> | undefined;
  private readonly create: () => Promise<Ledger>;

  constructor(create: () => Promise<Ledger>) {
    this.create = create;
  }

  private get real(): Promise<Ledger> {
    this.ledger ??= this.create().catch((err: unknown) => {
      this.ledger = undefined; // try again next time
      throw err;
    });
    return this.ledger;
  }

  async claim(job: Job, leaseMs: number, events?: readonly JobEvent[]) {
    return (await this.real).claim(job, leaseMs, events);
  }
  async update(next: Job, events?: readonly JobEvent[]) {
    return (await this.real).update(next, events);
  }
  async pendingEvents(limit: number) {
    return (await this.real).pendingEvents(limit);
  }
  async markPublished(eventIds: readonly string[]) {
    return (await this.real).markPublished(eventIds);
  }
  async get(id: string) {
    return (await this.real).get(id);
  }
  async withIdPrefix(prefix: string, limit: number) {
    return (await this.real).withIdPrefix(prefix, limit);
  }
  async list(query: { state?: JobState; limit: number; pageToken?: string }): Promise<JobPage> {
    return (await this.real).list(query);
  }
  async succeeded(rule: string, limit: number) {
    return (await this.real).succeeded(rule, limit);
  }
  async queued(limit: number) {
    return (await this.real).queued(limit);
  }
  async readCapacity() {
    return (await this.real).readCapacity();
  }
  async writeCapacity(next: CapacityRecord) {
    return (await this.real).writeCapacity(next);
  }
}
